/* md.c - the Markdown subset of md.h to escaped HTML, one line at a time (see md.h). */
#include "md.h"

#include <stdbool.h>
#include <string.h>

enum md_block { MB_NONE, MB_P, MB_UL, MB_OL, MB_TABLE, MB_QUOTE };

static const char *const block_end[] = {
	[MB_NONE] = "",      [MB_P] = "</p>\n",       [MB_UL] = "</ul>\n",
	[MB_OL] = "</ol>\n", [MB_TABLE] = "</pre>\n", [MB_QUOTE] = "</blockquote>\n"};

/* n bytes of s, escaped as buf_html does. */
static void esc(struct buf *b, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		const char *e = NULL;
		switch (s[i]) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		default: continue;
		}
		buf_append(b, s + run, i - run);
		buf_puts(b, e);
		run = i + 1;
	}
	buf_append(b, s + run, n - run);
}

/* The first occurrence of the two bytes m in s[from, n), or n. */
static size_t find2(const char *s, size_t from, size_t n, const char *m)
{
	for (size_t i = from; i + 1 < n; i++)
		if (s[i] == m[0] && s[i + 1] == m[1])
			return i;
	return n;
}

/* Inline text: `code`, **strong** and __strong__ (whose inside holds no other strong, so the
 * recursion is one level deep); everything else escaped. */
static void inline_md(struct buf *b, const char *s, size_t n)
{
	size_t i = 0, start = 0;
	while (i < n) {
		if (s[i] == '`') {
			const char *z = memchr(s + i + 1, '`', n - i - 1);
			if (z && z > s + i + 1) {
				esc(b, s + start, i - start);
				buf_puts(b, "<code>");
				esc(b, s + i + 1, (size_t)(z - s) - i - 1);
				buf_puts(b, "</code>");
				i = (size_t)(z - s) + 1;
				start = i;
				continue;
			}
		} else if (i + 1 < n && (s[i] == '*' || s[i] == '_') && s[i + 1] == s[i]) {
			const char m[2] = {s[i], s[i]};
			size_t k = find2(s, i + 2, n, m);
			if (k < n && k > i + 2) {
				esc(b, s + start, i - start);
				buf_puts(b, "<strong>");
				inline_md(b, s + i + 2, k - i - 2);
				buf_puts(b, "</strong>");
				i = k + 2;
				start = i;
				continue;
			}
		}
		i++;
	}
	esc(b, s + start, n - start);
}

/* A thematic break: 3 or more of one of - * _, spaces between allowed. */
static bool is_break(const char *s, size_t n)
{
	char c = 0;
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t')
			continue;
		if ((s[i] != '-' && s[i] != '*' && s[i] != '_') || (c && s[i] != c))
			return false;
		c = s[i];
		count++;
	}
	return count >= 3;
}

/* The length of an ordered item's marker ("12. ", "3) "), or 0. */
static size_t ol_marker(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && i < 9 && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == 0 || i + 1 >= n || (s[i] != '.' && s[i] != ')') || s[i + 1] != ' ')
		return 0;
	return i + 2;
}

static void open_block(struct buf *b, enum md_block *cur, enum md_block want, const char *tag)
{
	if (*cur == want)
		return;
	buf_puts(b, block_end[*cur]);
	buf_puts(b, tag);
	*cur = want;
}

static void close_block(struct buf *b, enum md_block *cur)
{
	buf_puts(b, block_end[*cur]);
	*cur = MB_NONE;
}

void md_html(struct buf *b, const char *md)
{
	if (!md)
		return;
	enum md_block cur = MB_NONE;
	bool fence = false;
	char fence_ch = 0;
	const char *p = md;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const char *next = nl ? nl + 1 : p + len;
		if (len && p[len - 1] == '\r')
			len--;
		/* t, n: the line without its indentation and trailing blanks */
		const char *t = p;
		size_t n = len;
		while (n && (*t == ' ' || *t == '\t')) {
			t++;
			n--;
		}
		while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
			n--;
		if (fence) {
			if (n >= 3 && t[0] == fence_ch && t[1] == fence_ch && t[2] == fence_ch) {
				buf_puts(b, "</code></pre>\n");
				fence = false;
			} else {
				esc(b, p, len);
				buf_putc(b, '\n');
			}
		} else if (n >= 3 && (t[0] == '`' || t[0] == '~') && t[1] == t[0] && t[2] == t[0]) {
			close_block(b, &cur);
			buf_puts(b, "<pre><code>");
			fence = true;
			fence_ch = t[0];
		} else if (n == 0) {
			close_block(b, &cur);
		} else if (t[0] == '#') {
			size_t h = 0;
			while (h < n && t[h] == '#')
				h++;
			if (h <= 6 && (h == n || t[h] == ' ')) {
				const char *x = t + h;
				size_t xn = n - h;
				while (xn && *x == ' ') {
					x++;
					xn--;
				}
				while (xn && x[xn - 1] == '#') /* closing sequence (4.2) */
					xn--;
				while (xn && x[xn - 1] == ' ')
					xn--;
				close_block(b, &cur);
				buf_printf(b, "<h%zu>", h);
				inline_md(b, x, xn);
				buf_printf(b, "</h%zu>\n", h);
			} else {
				goto text;
			}
		} else if (is_break(t, n)) {
			close_block(b, &cur);
			buf_puts(b, "<hr>\n");
		} else if (t[0] == '|') {
			open_block(b, &cur, MB_TABLE, "<pre class=\"table\">");
			esc(b, t, n);
			buf_putc(b, '\n');
		} else if (n >= 2 && (t[0] == '-' || t[0] == '*' || t[0] == '+') && t[1] == ' ') {
			open_block(b, &cur, MB_UL, "<ul>\n");
			buf_puts(b, "<li>");
			inline_md(b, t + 2, n - 2);
			buf_puts(b, "</li>\n");
		} else if (ol_marker(t, n)) {
			size_t m = ol_marker(t, n);
			open_block(b, &cur, MB_OL, "<ol>\n");
			buf_puts(b, "<li>");
			inline_md(b, t + m, n - m);
			buf_puts(b, "</li>\n");
		} else if (t[0] == '>') {
			size_t m = n > 1 && t[1] == ' ' ? 2 : 1;
			open_block(b, &cur, MB_QUOTE, "<blockquote>\n");
			buf_puts(b, "<p>");
			inline_md(b, t + m, n - m);
			buf_puts(b, "</p>\n");
		} else {
text:
			if (cur == MB_P) {
				buf_putc(b, '\n');
			} else {
				close_block(b, &cur);
				buf_puts(b, "<p>");
				cur = MB_P;
			}
			inline_md(b, t, n);
		}
		p = next;
	}
	if (fence)
		buf_puts(b, "</code></pre>\n");
	close_block(b, &cur);
}
