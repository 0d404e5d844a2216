/* test-md.c - unit tests of lib/md.c: the Markdown subset of md.h rendered as HTML, and the
 * promise that nothing of the input becomes markup (every '<' of the output opens one of the
 * renderer's own tags, and no attribute but its own class carries anything). */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "md.h"
#include "md-tags.h"

static char *render(const char *md)
{
	struct buf b;
	buf_init(&b, NULL);
	md_html(&b, md);
	char *s = strdup(b.p ? b.p : "");
	buf_free(&b);
	return s;
}

#define CHECK_MD(in, want)                    \
	do {                                  \
		char *got_ = render(in);      \
		ck_assert_str_eq(got_, want); \
		free(got_);                   \
	} while (0)

/* Every tag of html is one of the renderer's. */
static void only_own_tags(const char *html)
{
	const char *bad = md_foreign_markup(html);
	ck_assert_msg(bad == NULL, "foreign markup at: %.40s", bad);
}

START_TEST(test_blocks)
{
	CHECK_MD("# Title\n\nSome text\nmore text\n\n## Two ##\n",
		 "<h1>Title</h1>\n<p>Some text\nmore text</p>\n<h2>Two</h2>\n");
	CHECK_MD("- a\n* b\n+ c\n\n1. one\n2) two\n",
		 "<ul>\n<li>a</li>\n<li>b</li>\n<li>c</li>\n</ul>\n<ol>\n<li>one</li>\n"
		 "<li>two</li>\n</ol>\n");
	CHECK_MD("text\n- item\n---\n> quoted\n",
		 "<p>text</p>\n<ul>\n<li>item</li>\n</ul>\n<hr>\n<blockquote>\n<p>quoted</p>\n"
		 "</blockquote>\n");
	CHECK_MD("```c\nint a < b;\n  x\n```\nafter",
		 "<pre><code>int a &lt; b;\n  x\n</code></pre>\n<p>after</p>\n");
	CHECK_MD("| a | b |\n|---|---|\n| 1 | 2 |\n",
		 "<pre class=\"table\">| a | b |\n|---|---|\n| 1 | 2 |\n</pre>\n");
	CHECK_MD("#hashtag\n####### seven", "<p>#hashtag\n####### seven</p>\n");
	CHECK_MD("line\r\n\r\nnext\r\n", "<p>line</p>\n<p>next</p>\n");
	CHECK_MD("", "");
	CHECK_MD("```\nunclosed <b>", "<pre><code>unclosed &lt;b&gt;\n</code></pre>\n");
	char *s = render(NULL);
	ck_assert_str_eq(s, "");
	free(s);
}
END_TEST

START_TEST(test_inline)
{
	CHECK_MD(
		"a **bold** and __too__, `x<y` end",
		"<p>a <strong>bold</strong> and <strong>too</strong>, <code>x&lt;y</code> end</p>\n");
	CHECK_MD("**`code` in bold**", "<p><strong><code>code</code> in bold</strong></p>\n");
	CHECK_MD("** not closed and `not either", "<p>** not closed and `not either</p>\n");
	CHECK_MD("****", "<hr>\n");
	CHECK_MD("x **** y", "<p>x **** y</p>\n");
	CHECK_MD("- **Owner:** me", "<ul>\n<li><strong>Owner:</strong> me</li>\n</ul>\n");
}
END_TEST

START_TEST(test_nothing_of_the_input_is_markup)
{
	const char *hostile = "# <script>alert(1)</script>\n"
			      "<img src=x onerror=alert(1)>\n"
			      "[link](javascript:alert(1)) ![i](http://x/y.png)\n"
			      "- <a href=\"http://evil\">x</a>\n"
			      "**<b onclick='x'>bold</b>**\n"
			      "`</code><script>`\n"
			      "> <iframe>\n"
			      "| <td> |\n"
			      "```\n</code></pre><script>\n```\n";
	char *s = render(hostile);
	only_own_tags(s);
	ck_assert_ptr_nonnull(strstr(s, "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"));
	ck_assert_ptr_nonnull(strstr(s, "&lt;img src=x onerror=alert(1)&gt;"));
	ck_assert_ptr_nonnull(strstr(s, "[link](javascript:alert(1))"));
	ck_assert_ptr_nonnull(strstr(s, "&lt;a href=&quot;http://evil&quot;&gt;"));
	ck_assert_ptr_nonnull(strstr(s, "&lt;b onclick=&#39;x&#39;&gt;"));
	ck_assert_ptr_nonnull(strstr(s, "<code>&lt;/code&gt;&lt;script&gt;</code>"));
	free(s);
	/* every byte value, anywhere in a line */
	char all[256 * 3 + 1];
	size_t k = 0;
	for (int c = 1; c < 256; c++) {
		all[k++] = (char)c;
		if (c % 16 == 0)
			all[k++] = '\n';
	}
	all[k] = '\0';
	s = render(all);
	only_own_tags(s);
	free(s);
}
END_TEST

static Suite *md_suite(void)
{
	Suite *s = suite_create("md");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_blocks);
	tcase_add_test(tc, test_inline);
	tcase_add_test(tc, test_nothing_of_the_input_is_markup);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(md_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
