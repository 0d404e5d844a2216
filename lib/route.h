/* route.h - the route table: method + path pattern with {param} segments -> handler.
 *
 * The application declares its whole API in one array of struct route (app/routes.c). Each
 * entry also declares what the middleware must do before the handler runs: authentication,
 * rate-limit class and the body contract. Matching is by segments; literal segments win over
 * parameters, so "/api/products/portfolio" beats "/api/products/{id}" whatever the order.
 */
#ifndef IF_ROUTE_H
#define IF_ROUTE_H

#include <stddef.h>
#include <stdint.h>

struct req;
struct jx_field;

enum http_method { HM_GET, HM_HEAD, HM_POST, HM_PUT, HM_PATCH, HM_DELETE, HM_OPTIONS, HM__MAX };
extern const char *const http_method_names[HM__MAX + 1];

/* Route flags. */
#define ROUTE_AUTH 0x01u     /* needs a valid session: the auth hook runs, 401 without one */
#define ROUTE_JSON 0x02u     /* takes a JSON body: 415 on another content type, 400 if malformed */
#define ROUTE_RAW 0x04u      /* takes a raw body of any content type (uploads), read with caps */
#define ROUTE_STRICT 0x08u   /* with body fields: unknown members are 422 */
#define ROUTE_STREAM 0x10u   /* response is streamed (no buffering assumptions) */
#define ROUTE_OPTBODY 0x20u  /* with ROUTE_JSON: an empty body is allowed (json = NULL) */
#define ROUTE_INTERNAL 0x40u /* operator route (status, metrics): never rate limited */
#define ROUTE_IDEMPOTENT 0x80u /* a create route that honours the Idempotency-Key header */
#define ROUTE_PRODUCT                                                           \
	0x100u /* product-scoped: acts on a product named in its path, query or \
		* body; the tenant matrix (tests/api/test_matrix.py) enumerates \
		* these routes from --list-routes */
#define ROUTE_APP(n) (1u << (24 + (n))) /* n = 0..7: bits the application defines */

#define ROUTE_MAX_PARAMS 4

typedef int (*route_fn)(struct req *r); /* returns enum rc */

struct route {
	enum http_method method;     /* HM_GET also answers HEAD */
	const char *pattern;         /* "/api/products/{id}/shares/{share_id}" */
	route_fn fn;                 /* the handler */
	unsigned flags;              /* ROUTE_* */
	int rl_class;                /* application's rate-limit class (0 = default) */
	const struct jx_field *body; /* body contract for ROUTE_JSON, or NULL */
	int64_t max_body;            /* ROUTE_JSON/ROUTE_RAW: body cap in bytes, 413 above it
				      * before a byte is read; 0 = the server's max_body_bytes */
};

struct route_match {
	int idx;                             /* index in the table, -1 when none */
	unsigned allow;                      /* bitmask of methods the path has (for 405) */
	int nparams;                         /* path parameters captured */
	const char *names[ROUTE_MAX_PARAMS]; /* borrowed from the pattern, without braces */
	size_t name_lens[ROUTE_MAX_PARAMS];  /* lengths of names */
	char *values[ROUTE_MAX_PARAMS];      /* arena copies, percent-decoded */
};

struct arena;

/* Matches method and path (no query string). idx = -1 and allow = 0 -> 404; idx = -1 and
 * allow != 0 -> 405. Values are allocated from a. */
void route_match(const struct route *tbl, size_t n, enum http_method m, const char *path,
		 struct arena *a, struct route_match *out);

/* Parses "GET" etc.; HM__MAX when unknown. */
enum http_method http_method_parse(const char *s);

/* Percent-decodes s into a new arena string ('+' -> ' ' only when plus_space). NULL when the
 * encoding is broken or decodes to a NUL byte. */
char *url_decode(struct arena *a, const char *s, size_t n, int plus_space);

#endif
