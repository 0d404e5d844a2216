/* buf.h - growable byte buffer backed by an arena (or malloc when the arena is NULL). */
#ifndef IF_BUF_H
#define IF_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

struct buf {
	char *p;         /* bytes, always NUL-terminated after any append */
	size_t len;      /* bytes used, excluding the terminator */
	size_t cap;      /* bytes allocated */
	struct arena *a; /* owning arena, or NULL: then buf_free() releases p */
};

void buf_init(struct buf *b, struct arena *a);
void buf_free(struct buf *b);  /* only for malloc-backed buffers; accepts zeroed buffers */
void buf_reset(struct buf *b); /* len = 0, keeps the allocation */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included (RFC 8259 section 7). NULL -> null. */
void buf_json_str(struct buf *b, const char *s);
/* Appends s with &<>"' escaped for HTML text and attribute values. */
void buf_html(struct buf *b, const char *s);

#endif
