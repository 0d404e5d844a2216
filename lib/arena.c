/* arena.c - bump allocator in chunks, with cleanups run in reverse order at reset. */
#include "arena.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

struct chunk {
	struct chunk *next; /* older chunk */
	size_t cap;         /* usable bytes in data */
	size_t used;        /* bytes handed out */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct cleanup {
	void (*fn)(void *);   /* cleanup function */
	void *p;              /* its argument */
	struct cleanup *next; /* registered before this one */
};

struct arena {
	struct chunk *head;       /* current chunk; the last in the list is the first ever */
	size_t chunk_bytes;       /* default chunk size */
	struct cleanup *cleanups; /* newest first */
	size_t used;              /* bytes handed out since reset */
};

static struct chunk *chunk_new(size_t cap)
{
	struct chunk *c = malloc(sizeof(*c) + cap);
	if (!c) {
		fputs("arena: out of memory\n", stderr);
		abort();
	}
	c->next = NULL;
	c->cap = cap;
	c->used = 0;
	return c;
}

struct arena *arena_new(size_t chunk_bytes)
{
	struct arena *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->chunk_bytes = chunk_bytes < 1024 ? 1024 : chunk_bytes;
	a->head = chunk_new(a->chunk_bytes);
	return a;
}

static void run_cleanups(struct arena *a)
{
	struct cleanup *c = a->cleanups;
	a->cleanups = NULL;
	while (c) {
		struct cleanup *next = c->next;
		c->fn(c->p);
		c = next;
	}
}

void arena_reset(struct arena *a)
{
	if (!a)
		return;
	run_cleanups(a);
	while (a->head->next) {
		struct chunk *old = a->head;
		a->head = old->next;
		free(old);
	}
	a->head->used = 0;
	a->used = 0;
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	arena_reset(a);
	free(a->head);
	free(a);
}

void *arena_alloc(struct arena *a, size_t n)
{
	size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need == 0)
		need = ARENA_ALIGN;
	if (a->head->cap - a->head->used < need) {
		size_t cap = need > a->chunk_bytes ? need : a->chunk_bytes;
		struct chunk *c = chunk_new(cap);
		c->next = a->head;
		a->head = c;
	}
	void *p = a->head->data + a->head->used;
	a->head->used += need;
	a->used += need;
	return p;
}

void *arena_calloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);
	memset(p, 0, n);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strtrim(struct arena *a, const char *s)
{
	if (!s)
		return NULL;
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return n ? arena_strndup(a, s, n) : NULL;
}

char *arena_strdup(struct arena *a, const char *s)
{
	if (!s)
		return NULL;
	return arena_strndup(a, s, strlen(s));
}

char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
	if (!fmt)
		return arena_strdup(a, "");
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return arena_strdup(a, "");
	char *p = arena_alloc(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void arena_defer(struct arena *a, void (*fn)(void *), void *p)
{
	if (!p)
		return;
	struct cleanup *c = arena_alloc(a, sizeof(*c));
	c->fn = fn;
	c->p = p;
	c->next = a->cleanups;
	a->cleanups = c;
}

size_t arena_used(const struct arena *a)
{
	return a->used;
}
