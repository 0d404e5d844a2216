/* rc.h - the one result vocabulary of lib/ and app/.
 *
 * Every function that can fail returns an enum rc; the HTTP status is derived from it in
 * exactly one place (rc_http_status), so a handler never writes a status number for an error.
 */
#ifndef IF_RC_H
#define IF_RC_H

enum rc {
	RC_OK = 0,      /* success: 200 */
	RC_CREATED,     /* success, resource created: 201 */
	RC_ACCEPTED,    /* accepted, still running: 202 */
	RC_BADREQ,      /* malformed request or a rule of the API refused: 400 */
	RC_UNAUTH,      /* no valid session: 401 */
	RC_FORBIDDEN,   /* authenticated, not allowed: 403 */
	RC_NOTFOUND,    /* no such resource (or not visible to the caller): 404 */
	RC_METHOD,      /* path exists, method does not: 405 */
	RC_CONFLICT,    /* state conflict (unique key): 409 */
	RC_GONE,        /* removed on purpose: 410 */
	RC_TOOLARGE,    /* body over the cap: 413 */
	RC_MEDIA,       /* wrong content type for a body: 415 */
	RC_INVALID,     /* field validation failed: 422 */
	RC_RATELIMIT,   /* over a rate limit: 429 */
	RC_INTERNAL,    /* a bug or an unexpected failure: 500, detail never shows internals */
	RC_UNAVAILABLE, /* a dependency is down or saturated: 503 with Retry-After */
	RC__MAX
};

/* Short stable name of a code ("RC_NOTFOUND"); never NULL. */
const char *rc_str(enum rc rc);

/* The HTTP status of a code; unknown codes map to 500. */
int rc_http_status(enum rc rc);

/* The HTTP reason phrase of a status ("Not Found"); never NULL. */
const char *http_reason(int status);

#endif
