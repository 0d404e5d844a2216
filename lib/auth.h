/* auth.h - signed session tokens: JWT (RFC 7519) with HS256 (RFC 7518 section 3.2) via libjwt.
 *
 * A token carries who (sub), which tenant (tid), which session (jti), when it was issued (iat)
 * and until when it is valid (exp), all as claims of a compact JWS. Only HS256 is produced and
 * only HS256 is accepted: a token whose header names "none" or any other algorithm is refused
 * whatever its signature, so an attacker cannot choose how we verify (RFC 8725 section 3.1).
 * Expiry is checked here with our clock, not by the library (libjwt 1.10 does not check exp).
 *
 * auth_issue/auth_verify keep no state and are thread-safe; the key is borrowed for the call.
 */
#ifndef IF_AUTH_H
#define IF_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Shortest signing key accepted (RFC 7518 section 3.2: a key of at least the hash size). */
#define AUTH_KEY_MIN 32
/* Longest token accepted for verification; longer input is refused before parsing. */
#define AUTH_TOKEN_MAX 4096
/* Room for each string claim (a UUID is 36 characters). */
#define AUTH_CLAIM_MAX 64

struct auth_claims {
	char sub[AUTH_CLAIM_MAX]; /* subject: the user id */
	char tid[AUTH_CLAIM_MAX]; /* tenant id */
	char jti[AUTH_CLAIM_MAX]; /* token id = session id */
	int64_t iat_s;            /* issued at, unix seconds */
	int64_t exp_s;            /* expires at, unix seconds */
};

/* Results of auth_verify(). */
enum auth_result {
	AUTH_OK = 0,      /* signature, algorithm, claims and expiry are good */
	AUTH_EXPIRED = 1, /* a genuine token (signature good) whose exp has passed */
	AUTH_INVALID = 2, /* malformed, wrong algorithm, bad signature or missing claims */
	AUTH_ERROR = -1,  /* out of memory or a bad key argument */
};

/*
 * Signs c (sub, tid, jti, iat_s, exp_s; strings NUL-terminated, non-empty, printable ASCII)
 * with HS256 and key (keylen >= AUTH_KEY_MIN). Returns a malloc'ed compact token the caller
 * frees with free(), or NULL on a bad argument or out of memory.
 */
char *auth_issue(const struct auth_claims *c, const unsigned char *key, size_t keylen);

/*
 * Verifies token against key at time now_s (unix seconds): the header algorithm must be
 * HS256, the signature must match, sub/tid/jti must be non-empty strings shorter than
 * AUTH_CLAIM_MAX and iat/exp integers. On AUTH_OK and AUTH_EXPIRED *out holds the claims; on
 * other results *out is zeroed. A token is expired when now_s >= exp_s. Returns enum
 * auth_result; never crashes on arbitrary input.
 */
int auth_verify(const char *token, const unsigned char *key, size_t keylen, int64_t now_s,
		struct auth_claims *out);

/*
 * A small per-thread memo of tokens that verified, so that a client sending the same token on
 * every request costs one memcmp instead of a JWT parse and an HMAC. An entry is the token's
 * exact bytes and its claims: a hit means these very bytes were verified before with this
 * key, so the signature check would give the same answer; expiry is re-checked against now_s on
 * every hit. Not thread-safe: one cache per thread. The key must not change during the cache's
 * life (a configuration reload replaces the worker processes, and their caches with them).
 */
struct auth_cache;

/* New cache of about `entries` tokens; NULL on out of memory. Owned; auth_cache_free(NULL) ok. */
struct auth_cache *auth_cache_new(size_t entries);
void auth_cache_free(struct auth_cache *c);

/* auth_verify() through the cache (which may be NULL: then it is plain auth_verify). */
int auth_verify_cached(struct auth_cache *c, const char *token, const unsigned char *key,
		       size_t keylen, int64_t now_s, struct auth_claims *out);

#endif
