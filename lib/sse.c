/* sse.c - Server-Sent Events parser and writer (WHATWG HTML 9.2.6, "Interpreting an event
 * stream"; the section numbers below are those of the living standard). */
#include "sse.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define SSE_DEFAULT_MAX (256u * 1024u) /* bytes of one event when the caller gives 0 */

struct sse_parser {
	sse_event_fn fn;  /* event callback */
	void *u;          /* its argument */
	size_t max_bytes; /* cap on line + data of one event */
	struct buf line;  /* the line being read, without its terminator */
	struct buf data;  /* data buffer: each data value followed by LF */
	struct buf event; /* event type buffer */
	struct buf id;    /* last event ID buffer (kept across events) */
	bool cr_pending;  /* the last byte was a CR: an LF right after it ends nothing */
	bool first_line;  /* no line completed yet: a leading BOM is still possible */
	bool failed;      /* cap exceeded or callback stopped: every feed fails */
};

struct sse_parser *sse_parser_new(size_t max_event_bytes, sse_event_fn fn, void *u)
{
	struct sse_parser *p = NULL;
	if (!fn)
		goto out;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto out;
	p->fn = fn;
	p->u = u;
	p->max_bytes = max_event_bytes ? max_event_bytes : SSE_DEFAULT_MAX;
	buf_init(&p->line, NULL);
	buf_init(&p->data, NULL);
	buf_init(&p->event, NULL);
	buf_init(&p->id, NULL);
	p->first_line = true;
out:
	return p;
}

void sse_parser_free(struct sse_parser *p)
{
	if (!p)
		return;
	buf_free(&p->line);
	buf_free(&p->data);
	buf_free(&p->event);
	buf_free(&p->id);
	free(p);
}

/* "dispatch the event" (9.2.6): the last event ID buffer stays; an empty data buffer
 * dispatches nothing; the final LF of the data buffer is removed. */
static int sse_dispatch(struct sse_parser *p)
{
	const char *type = p->event.len ? p->event.p : "message";
	const char *id = p->id.len ? p->id.p : NULL;
	int rc = 0;
	if (p->data.len == 0)
		goto out;
	p->data.len--;
	p->data.p[p->data.len] = '\0';
	if (p->fn(p->u, type, p->data.p, p->data.len, id) != 0)
		rc = -1;
out:
	buf_reset(&p->data);
	buf_reset(&p->event);
	return rc;
}

static bool sse_name_is(const char *name, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(name, lit, n) == 0;
}

/* "process the field" (9.2.6); unknown fields and "retry" are ignored. */
static int sse_field(struct sse_parser *p, const char *name, size_t nlen, const char *val,
		     size_t vlen)
{
	if (sse_name_is(name, nlen, "event")) {
		buf_reset(&p->event);
		buf_append(&p->event, val, vlen);
	} else if (sse_name_is(name, nlen, "data")) {
		if (p->data.len + vlen + 1 > p->max_bytes)
			return -1;
		buf_append(&p->data, val, vlen);
		buf_putc(&p->data, '\n');
	} else if (sse_name_is(name, nlen, "id")) {
		if (!memchr(val, '\0', vlen)) { /* an ID holding NUL is ignored */
			buf_reset(&p->id);
			buf_append(&p->id, val, vlen);
		}
	}
	return 0;
}

/* One complete line: blank dispatches, ':' starts a comment, else "name[: value]". */
static int sse_line(struct sse_parser *p, const char *s, size_t n)
{
	if (p->first_line) { /* 9.2.5: one leading U+FEFF BYTE ORDER MARK is skipped */
		p->first_line = false;
		if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
		}
	}
	if (n == 0)
		return sse_dispatch(p);
	if (s[0] == ':')
		return 0;
	const char *colon = memchr(s, ':', n);
	if (!colon)
		return sse_field(p, s, n, "", 0);
	size_t nlen = (size_t)(colon - s);
	const char *val = colon + 1;
	size_t vlen = n - nlen - 1;
	if (vlen && val[0] == ' ') {
		val++;
		vlen--;
	}
	return sse_field(p, s, nlen, val, vlen);
}

/* Index of the first CR or LF in s[0..n), or n. */
static size_t sse_eol(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] != '\r' && s[i] != '\n')
		i++;
	return i;
}

int sse_parser_feed(struct sse_parser *p, const char *data, size_t n)
{
	size_t i = 0;
	while (!p->failed && i < n) {
		if (p->cr_pending) { /* CRLF split anywhere: the LF belongs to the CR */
			p->cr_pending = false;
			if (data[i] == '\n') {
				i++;
				continue;
			}
		}
		size_t seg = sse_eol(data + i, n - i);
		if (p->line.len + seg + p->data.len > p->max_bytes) {
			p->failed = true;
			break;
		}
		buf_append(&p->line, data + i, seg);
		i += seg;
		if (i == n)
			break;
		p->cr_pending = data[i] == '\r';
		i++;
		if (sse_line(p, p->line.p ? p->line.p : "", p->line.len) != 0)
			p->failed = true;
		buf_reset(&p->line);
	}
	return p->failed ? -1 : 0;
}

/* Appends s without its CR and LF bytes. */
static void sse_put_oneline(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	size_t i = 0;
	while (i < n) {
		size_t seg = sse_eol(s + i, n - i);
		buf_append(b, s + i, seg);
		i += seg + (i + seg < n);
	}
}

/* Appends "<prefix><line>\n" for each line of s[0..n) (split at LF, CR, CRLF), at least one. */
static void sse_put_lines(struct buf *b, const char *prefix, const char *s, size_t n)
{
	size_t i = 0;
	for (;;) {
		size_t seg = s ? sse_eol(s + i, n - i) : 0;
		buf_puts(b, prefix);
		buf_append(b, s ? s + i : "", seg);
		buf_putc(b, '\n');
		i += seg;
		if (i >= n)
			break;
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
		i++;
		if (i == n) { /* a final line break ends with one empty line */
			buf_puts(b, prefix);
			buf_putc(b, '\n');
			break;
		}
	}
}

void sse_write_event(struct buf *b, const char *id, const char *event, const char *data, size_t len)
{
	if (id) {
		buf_puts(b, "id: ");
		sse_put_oneline(b, id);
		buf_putc(b, '\n');
	}
	if (event) {
		buf_puts(b, "event: ");
		sse_put_oneline(b, event);
		buf_putc(b, '\n');
	}
	sse_put_lines(b, "data: ", data, data ? len : 0);
	buf_putc(b, '\n');
}

void sse_write_comment(struct buf *b, const char *text)
{
	sse_put_lines(b, ": ", text, text ? strlen(text) : 0);
}
