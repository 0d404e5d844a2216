/* md-tags.h - what lib/md.h promises of its output, checked by the unit test (test-md.c) and
 * the fuzz target (tests/fuzz/fuzz-md.c): every '<' opens one of the renderer's own tags, so
 * nothing of the input (a model's answer) can become markup or an attribute.
 */
#ifndef IF_TESTS_MD_TAGS_H
#define IF_TESTS_MD_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* clang-format off */
static const char *const md_own_tags[] = {
	"<h1>", "</h1>", "<h2>", "</h2>", "<h3>", "</h3>", "<h4>", "</h4>", "<h5>", "</h5>",
	"<h6>", "</h6>", "<p>", "</p>", "<ul>", "</ul>", "<ol>", "</ol>", "<li>", "</li>",
	"<strong>", "</strong>", "<code>", "</code>", "<pre><code>", "</code></pre>",
	"<pre class=\"table\">", "</pre>", "<blockquote>", "</blockquote>", "<hr>", NULL};
/* clang-format on */

/* The first '<' of html (may be NULL) that opens none of the renderer's tags, or NULL. */
static inline const char *md_foreign_markup(const char *html)
{
	for (const char *p = html ? strchr(html, '<') : NULL; p; p = strchr(p + 1, '<')) {
		bool ok = false;
		for (const char *const *t = md_own_tags; *t && !ok; t++)
			ok = strncmp(p, *t, strlen(*t)) == 0;
		if (!ok)
			return p;
	}
	return NULL;
}

#endif
