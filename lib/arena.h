/* arena.h - per-request bump allocator with cleanups.
 *
 * A request takes everything it allocates from its arena; foreign objects (json_object,
 * PGresult, redisReply) are registered with arena_defer() so that an early return cannot
 * leak them. arena_reset() runs the cleanups in reverse order and keeps the first chunk for
 * the next request, so a steady-state request performs no malloc for small data.
 */
#ifndef IF_ARENA_H
#define IF_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/* New arena whose chunks are at least chunk_bytes. NULL on out of memory. Owned by caller. */
struct arena *arena_new(size_t chunk_bytes);

/* Frees the arena after running its cleanups. Accepts NULL. */
void arena_free(struct arena *a);

/* Runs cleanups (last registered first), releases all but the first chunk. */
void arena_reset(struct arena *a);

/* Allocation of n bytes aligned for any type; aborts the process on out of memory (a request
 * cannot continue meaningfully and the master respawns the worker). Valid until reset. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_calloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);            /* NULL in, NULL out */
char *arena_strndup(struct arena *a, const char *s, size_t n); /* always NUL-terminated */
/* s without leading and trailing white space (a copy in a), or NULL when s is NULL or blank. */
char *arena_strtrim(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap);

/* Registers fn(p) to run at reset/free. p may be NULL (then nothing is registered). */
void arena_defer(struct arena *a, void (*fn)(void *), void *p);

/* Bytes handed out since the last reset (for the scoreboard and tests). */
size_t arena_used(const struct arena *a);

#endif
