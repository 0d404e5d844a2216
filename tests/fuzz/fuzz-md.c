/* fuzz-md.c - the Markdown renderer (lib/md.h) on any bytes: a model's answer is untrusted.
 *
 * Checks what md.h promises: the output is the renderer's own markup only, every '<' opens
 * one of its tags, so nothing of the input can become markup or an attribute.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "md.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const tags[] = {"<h1>",
				   "</h1>",
				   "<h2>",
				   "</h2>",
				   "<h3>",
				   "</h3>",
				   "<h4>",
				   "</h4>",
				   "<h5>",
				   "</h5>",
				   "<h6>",
				   "</h6>",
				   "<p>",
				   "</p>",
				   "<ul>",
				   "</ul>",
				   "<ol>",
				   "</ol>",
				   "<li>",
				   "</li>",
				   "<strong>",
				   "</strong>",
				   "<code>",
				   "</code>",
				   "<pre><code>",
				   "</code></pre>",
				   "<pre class=\"table\">",
				   "</pre>",
				   "<blockquote>",
				   "</blockquote>",
				   "<hr>",
				   NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *md = malloc(size + 1);
	if (!md)
		return 0;
	memcpy(md, data, size);
	md[size] = '\0'; /* md_html reads a C string: up to the first NUL */
	struct buf b;
	buf_init(&b, NULL);
	md_html(&b, md);
	for (const char *p = b.p ? strchr(b.p, '<') : NULL; p; p = strchr(p + 1, '<')) {
		int ok = 0;
		for (const char *const *t = tags; *t && !ok; t++)
			ok = strncmp(p, *t, strlen(*t)) == 0;
		if (!ok)
			__builtin_trap();
	}
	buf_free(&b);
	free(md);
	return 0;
}
