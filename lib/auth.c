/* auth.c - HS256 JWT issue and verification over libjwt 1.10 (its v1 API). */
#include "auth.h"

#include <errno.h>
#include <jwt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* True when s is a non-empty printable ASCII string shorter than AUTH_CLAIM_MAX. */
static bool claim_ok(const char *s)
{
	if (!s || !*s)
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] <= ' ' || (unsigned char)s[n] >= 0x7f)
			return false;
	return n < AUTH_CLAIM_MAX;
}

char *auth_issue(const struct auth_claims *c, const unsigned char *key, size_t keylen)
{
	jwt_t *j = NULL;
	char *tok = NULL;
	if (!c || !key || keylen < AUTH_KEY_MIN || keylen > 1024 || !claim_ok(c->sub) ||
	    !claim_ok(c->tid) || !claim_ok(c->jti))
		goto out;
	if (jwt_new(&j) != 0)
		goto out;
	if (jwt_add_grant(j, "sub", c->sub) || jwt_add_grant(j, "tid", c->tid) ||
	    jwt_add_grant(j, "jti", c->jti) || jwt_add_grant_int(j, "iat", (long)c->iat_s) ||
	    jwt_add_grant_int(j, "exp", (long)c->exp_s))
		goto out;
	if (jwt_set_alg(j, JWT_ALG_HS256, key, (int)keylen) != 0)
		goto out;
	tok = jwt_encode_str(j);
out:
	jwt_free(j);
	return tok;
}

/* Reads the alg member of the token's header without trusting anything else: the header is
 * base64url JSON; we only need to know that it says exactly "HS256". libjwt decodes it again,
 * but checking first means a "none" token never reaches the library's unsigned path. */
static bool header_is_hs256(const char *token)
{
	const char *dot = strchr(token, '.');
	if (!dot || dot == token || (size_t)(dot - token) > 1024)
		return false;
	/* base64url decode into a small buffer */
	static const signed char dec[256] = {
		['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
		['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
		['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
		['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
		['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
		['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
		['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
		['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
		['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63,
		['_'] = 64,
	};
	char hdr[800];
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (const char *p = token; p < dot; p++) {
		int v = dec[(unsigned char)*p];
		if (v == 0)
			return false;
		acc = (acc << 6) | (uint32_t)(v - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= sizeof(hdr))
				return false;
			hdr[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	hdr[n] = '\0';
	if (memchr(hdr, '\0', n))
		return false;
	/* the alg member, tolerant of whitespace: "alg" : "HS256" and nothing else */
	const char *a = strstr(hdr, "\"alg\"");
	if (!a || strstr(a + 5, "\"alg\""))
		return false;
	a += 5;
	while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r')
		a++;
	if (*a++ != ':')
		return false;
	while (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r')
		a++;
	return strncmp(a, "\"HS256\"", 7) == 0;
}

/* A NumericDate claim (RFC 7519 section 2) as a JSON integer: libjwt's jwt_get_grant_int()
 * also turns a string or a float into a number, so read the claim's JSON text instead. */
static int int_claim(jwt_t *j, const char *name, int64_t *out)
{
	char *js = jwt_get_grants_json(j, name);
	int rc = -1;
	if (!js)
		return -1;
	const char *p = js;
	if (*p == '-')
		p++;
	size_t n = strspn(p, "0123456789");
	if (n > 0 && n <= 18 && p[n] == '\0') {
		*out = strtoll(js, NULL, 10);
		rc = 0;
	}
	free(js);
	return rc;
}

int auth_verify(const char *token, const unsigned char *key, size_t keylen, int64_t now_s,
		struct auth_claims *out)
{
	jwt_t *j = NULL;
	int rc = AUTH_INVALID;
	struct auth_claims c;
	memset(&c, 0, sizeof(c));
	if (out)
		memset(out, 0, sizeof(*out));
	if (!out || !key || keylen < AUTH_KEY_MIN || keylen > 1024) {
		rc = AUTH_ERROR;
		goto out;
	}
	if (!token)
		goto out;
	size_t tl = strnlen(token, AUTH_TOKEN_MAX + 1);
	if (tl == 0 || tl > AUTH_TOKEN_MAX)
		goto out;
	/* exactly three base64url parts, the signature non-empty */
	int dots = 0;
	for (size_t i = 0; i < tl; i++) {
		char ch = token[i];
		if (ch == '.')
			dots++;
		else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			goto out;
	}
	if (dots != 2 || token[tl - 1] == '.')
		goto out;
	if (!header_is_hs256(token))
		goto out;
	int e = jwt_decode(&j, token, key, (int)keylen);
	if (e != 0) {
		j = NULL;
		if (e == ENOMEM)
			rc = AUTH_ERROR;
		goto out;
	}
	if (jwt_get_alg(j) != JWT_ALG_HS256)
		goto out;
	const char *sub = jwt_get_grant(j, "sub");
	const char *tid = jwt_get_grant(j, "tid");
	const char *jti = jwt_get_grant(j, "jti");
	if (!claim_ok(sub) || !claim_ok(tid) || !claim_ok(jti))
		goto out;
	int64_t exp, iat;
	if (int_claim(j, "exp", &exp) < 0 || int_claim(j, "iat", &iat) < 0)
		goto out;
	strcpy(c.sub, sub);
	strcpy(c.tid, tid);
	strcpy(c.jti, jti);
	c.iat_s = iat;
	c.exp_s = exp;
	*out = c;
	rc = now_s >= c.exp_s ? AUTH_EXPIRED : AUTH_OK;
out:
	if (j)
		jwt_free(j);
	return rc;
}

/* --- the per-thread memo ------------------------------------------------------------------ */

#define AUTH_CACHE_TOKEN_MAX 1024 /* longer tokens are verified every time */

struct auth_cache_entry {
	uint64_t h;                       /* hash of the token, 0 = empty */
	size_t len;                       /* token length */
	char token[AUTH_CACHE_TOKEN_MAX]; /* the exact bytes that verified */
	struct auth_claims claims;        /* what they said */
};

struct auth_cache {
	size_t n;                   /* entries, a power of two */
	struct auth_cache_entry *e; /* direct-mapped by hash */
};

struct auth_cache *auth_cache_new(size_t entries)
{
	struct auth_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->n = 1;
	while (c->n < entries)
		c->n <<= 1;
	c->e = calloc(c->n, sizeof(*c->e));
	if (!c->e) {
		free(c);
		return NULL;
	}
	return c;
}

void auth_cache_free(struct auth_cache *c)
{
	if (!c)
		return;
	free(c->e);
	free(c);
}

/* FNV-1a: only spreads entries; equality is decided by comparing the bytes. */
static uint64_t token_hash(const char *t, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)t[i];
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1;
}

int auth_verify_cached(struct auth_cache *c, const char *token, const unsigned char *key,
		       size_t keylen, int64_t now_s, struct auth_claims *out)
{
	size_t n = token ? strnlen(token, AUTH_CACHE_TOKEN_MAX) : AUTH_CACHE_TOKEN_MAX;
	if (!c || n >= AUTH_CACHE_TOKEN_MAX || n == 0)
		return auth_verify(token, key, keylen, now_s, out);
	uint64_t h = token_hash(token, n);
	struct auth_cache_entry *e = &c->e[h & (c->n - 1)];
	if (e->h == h && e->len == n && memcmp(e->token, token, n) == 0) {
		*out = e->claims;
		return now_s >= out->exp_s ? AUTH_EXPIRED : AUTH_OK;
	}
	int rc = auth_verify(token, key, keylen, now_s, out);
	if (rc == AUTH_OK) {
		e->h = h;
		e->len = n;
		memcpy(e->token, token, n);
		e->claims = *out;
	}
	return rc;
}
