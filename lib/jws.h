/* jws.h - verifying signed JSON Web Tokens with public keys: JWS compact serialisation
 * (RFC 7515) signed RS256 or ES256 (RFC 7518 sections 3.3 and 3.4), keys from a JWK Set
 * (RFC 7517), through OpenSSL's EVP interface.
 *
 * For ID tokens of an OpenID provider (OpenID Connect Core 1.0 section 3.1.3.7): this module
 * proves that the provider signed the token; the claims (iss, aud, exp, nonce) are the
 * caller's to check. Only RS256 and ES256 are accepted, and only with a key of the matching
 * type: a header naming "none", an HMAC algorithm or anything else is refused whatever the
 * key set holds (RFC 8725 section 3.1), so a public key can never be used as an HMAC secret.
 * RSA keys shorter than 2048 bits are ignored (RFC 7518 section 3.3). A header with "crit"
 * is refused (we understand no extension: RFC 7515 section 4.1.11).
 *
 * A key set is immutable once parsed: any number of threads may verify with it at once.
 */
#ifndef IF_JWS_H
#define IF_JWS_H

#include <stddef.h>

struct arena;
struct json_object;
struct jws_keyset;

#define JWS_TOKEN_MAX (16u << 10) /* longest token looked at: 16 KiB */
#define JWS_KEYS_MAX 32           /* keys kept from one set */

enum jws_result {
	JWS_OK = 0,    /* signature verified; claims parsed */
	JWS_MALFORMED, /* not three base64url parts, or header/payload not JSON objects */
	JWS_ALG,       /* algorithm not RS256/ES256, or "crit" present */
	JWS_NOKEY,     /* no key of the set fits the header's kid and algorithm */
	JWS_BADSIG,    /* the signature does not verify */
	JWS_ERROR,     /* out of memory or a library failure */
};

/* "ok", "malformed", "alg", "nokey", "badsig", "error". Static. */
const char *jws_result_str(int r);

/*
 * Parses a JWK Set ({"keys":[...]}, len bytes). Keeps the signature keys it can use: kty RSA
 * (n, e; 2048 bits or more) and kty EC with crv P-256 (x, y; a point on the curve); keys with
 * "use" other than "sig" are skipped, as are keys of other types. Returns a new set owned by
 * the caller (jws_keyset_free), or NULL when the text is not a JWK Set or holds no usable key.
 */
struct jws_keyset *jws_keyset_parse(const char *json, size_t len);

/* Number of keys kept. */
size_t jws_keyset_count(const struct jws_keyset *ks);

/* Releases a set. Accepts NULL. */
void jws_keyset_free(struct jws_keyset *ks);

/*
 * Verifies token with the keys of ks: the header's alg must be RS256 or ES256; when the
 * header has a kid, only the key with that kid (and a matching type) is tried, else every
 * key of the matching type. On JWS_OK *claims is the payload object, handed to arena a (put
 * when it is reset); otherwise *claims is NULL. Never crashes on arbitrary input.
 */
int jws_verify(struct arena *a, const struct jws_keyset *ks, const char *token,
	       struct json_object **claims);

#endif
