/* jws.c - JWS (RS256, ES256) verification with JWK Set keys over OpenSSL 3 EVP (see jws.h). */
#include "jws.h"

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "httpc.h"
#include "jx.h"

#define JWS_JSON_DEPTH 16
#define JWS_KID_MAX 256
#define JWS_RSA_MIN_BITS 2048

enum jws_kty { JWS_KTY_RSA, JWS_KTY_EC };

struct jws_key {
	enum jws_kty kty;      /* key type, decides the algorithm: RS256 or ES256 */
	char kid[JWS_KID_MAX]; /* key id, "" when the JWK had none */
	EVP_PKEY *pkey;        /* the public key (owned) */
};

struct jws_keyset {
	size_t n;                          /* keys used */
	struct jws_key keys[JWS_KEYS_MAX]; /* the keys */
};

static const char *const jws_names[] = {"ok", "malformed", "alg", "nokey", "badsig", "error"};

const char *jws_result_str(int r)
{
	return r >= 0 && (size_t)r < sizeof(jws_names) / sizeof(jws_names[0]) ? jws_names[r] : "?";
}

/* base64url member key of o decoded into a malloc'ed buffer (*n bytes); NULL if absent/bad. */
static unsigned char *jws_member_bytes(struct arena *a, struct json_object *o, const char *key,
				       size_t *n)
{
	const char *s = jx_get_str(o, key);
	if (!s || !*s || strpbrk(s, "+/= \n"))
		return NULL;
	return httpc_b64_decode(a, s, strlen(s), n);
}

static EVP_PKEY *jws_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *jws_rsa_key(struct arena *a, struct json_object *jwk)
{
	size_t nn = 0, en = 0;
	unsigned char *n = jws_member_bytes(a, jwk, "n", &nn);
	unsigned char *e = jws_member_bytes(a, jwk, "e", &en);
	EVP_PKEY *pkey = NULL;
	if (!n || !e || nn == 0 || en == 0 || en > 8)
		return NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nn, NULL), *be = BN_bin2bn(e, (int)en, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (bn && be && bld && BN_num_bits(bn) >= JWS_RSA_MIN_BITS &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		pkey = jws_fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pkey;
}

static EVP_PKEY *jws_ec_key(struct arena *a, struct json_object *jwk)
{
	const char *crv = jx_get_str(jwk, "crv");
	size_t xn = 0, yn = 0;
	unsigned char *x = jws_member_bytes(a, jwk, "x", &xn);
	unsigned char *y = jws_member_bytes(a, jwk, "y", &yn);
	EVP_PKEY *pkey = NULL;
	if (!crv || strcmp(crv, "P-256") != 0 || !x || !y || xn != 32 || yn != 32)
		return NULL;
	unsigned char pub[65];
	pub[0] = 0x04; /* uncompressed point (SEC 1 section 2.3.3) */
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (bld &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
		pkey = jws_fromdata("EC", bld); /* fails for a point off the curve */
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

struct jws_keyset *jws_keyset_parse(const char *json, size_t len)
{
	struct jws_keyset *ks = NULL;
	struct arena *a = arena_new(4096);
	struct json_object *root = json ? jx_parse(json, len, JWS_JSON_DEPTH) : NULL;
	struct json_object *keys = root ? jx_get(root, "keys") : NULL;
	if (!a || !keys || !json_object_is_type(keys, json_type_array))
		goto out;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		goto out;
	size_t n = json_object_array_length(keys);
	for (size_t i = 0; i < n && ks->n < JWS_KEYS_MAX; i++) {
		struct json_object *jwk = json_object_array_get_idx(keys, i);
		const char *kty = jx_get_str(jwk, "kty"), *use = jx_get_str(jwk, "use");
		const char *kid = jx_get_str(jwk, "kid");
		if (!kty || (use && strcmp(use, "sig") != 0) || (kid && strlen(kid) >= JWS_KID_MAX))
			continue;
		struct jws_key *k = &ks->keys[ks->n];
		if (strcmp(kty, "RSA") == 0) {
			k->kty = JWS_KTY_RSA;
			k->pkey = jws_rsa_key(a, jwk);
		} else if (strcmp(kty, "EC") == 0) {
			k->kty = JWS_KTY_EC;
			k->pkey = jws_ec_key(a, jwk);
		}
		if (!k->pkey)
			continue;
		snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
		ks->n++;
	}
	if (ks->n == 0) {
		free(ks);
		ks = NULL;
	}
out:
	json_object_put(root);
	arena_free(a);
	return ks;
}

size_t jws_keyset_count(const struct jws_keyset *ks)
{
	return ks ? ks->n : 0;
}

void jws_keyset_free(struct jws_keyset *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++)
		EVP_PKEY_free(ks->keys[i].pkey);
	free(ks);
}

/* JWS ES256 signatures are r || s, 32 bytes each (RFC 7518 section 3.4); OpenSSL verifies the
 * DER form of ECDSA-Sig-Value. A malloc'ed DER signature, or NULL. */
static unsigned char *jws_es256_der(const unsigned char *sig, size_t n, size_t *dlen)
{
	if (n != 64)
		return NULL;
	unsigned char *der = NULL;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	int len = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (len <= 0)
		return NULL;
	*dlen = (size_t)len;
	return der;
}

static bool jws_check(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen, const char *data,
		      size_t dlen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		  EVP_DigestVerify(md, sig, siglen, (const unsigned char *)data, dlen) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* Parses base64url part [p, p+n) as a JSON object owned by a; NULL when it is not one. */
static struct json_object *jws_part_json(struct arena *a, const char *p, size_t n)
{
	size_t len = 0;
	unsigned char *raw = httpc_b64_decode(a, p, n, &len);
	if (!raw || memchr(p, '=', n))
		return NULL;
	struct json_object *o = jx_parse((const char *)raw, len, JWS_JSON_DEPTH);
	if (!o)
		return NULL;
	jx_arena_own(a, o);
	return json_object_is_type(o, json_type_object) ? o : NULL;
}

int jws_verify(struct arena *a, const struct jws_keyset *ks, const char *token,
	       struct json_object **claims)
{
	*claims = NULL;
	size_t tlen = token ? strnlen(token, JWS_TOKEN_MAX + 1) : 0;
	if (tlen == 0 || tlen > JWS_TOKEN_MAX)
		return JWS_MALFORMED;
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || strchr(d2 + 1, '.') || d1 == token || d2 == d1 + 1 || !d2[1])
		return JWS_MALFORMED;
	struct json_object *hdr = jws_part_json(a, token, (size_t)(d1 - token));
	struct json_object *body = jws_part_json(a, d1 + 1, (size_t)(d2 - d1 - 1));
	if (!hdr || !body)
		return JWS_MALFORMED;
	const char *alg = jx_get_str(hdr, "alg");
	if (!alg || jx_has(hdr, "crit"))
		return JWS_ALG;
	enum jws_kty want;
	if (strcmp(alg, "RS256") == 0)
		want = JWS_KTY_RSA;
	else if (strcmp(alg, "ES256") == 0)
		want = JWS_KTY_EC;
	else
		return JWS_ALG;
	size_t siglen = 0;
	const char *sigtxt = d2 + 1;
	if (strpbrk(sigtxt, "+/="))
		return JWS_MALFORMED;
	unsigned char *sig = httpc_b64_decode(a, sigtxt, strlen(sigtxt), &siglen);
	if (!sig)
		return JWS_MALFORMED;
	unsigned char *der = NULL;
	if (want == JWS_KTY_EC) {
		size_t dlen = 0;
		der = jws_es256_der(sig, siglen, &dlen);
		if (!der)
			return JWS_BADSIG;
		sig = der;
		siglen = dlen;
	}
	const char *kid = jx_get_str(hdr, "kid");
	bool tried = false, ok = false;
	for (size_t i = 0; ks && i < ks->n && !ok; i++) {
		const struct jws_key *k = &ks->keys[i];
		if (k->kty != want || (kid && strcmp(kid, k->kid) != 0))
			continue;
		tried = true;
		ok = jws_check(k->pkey, sig, siglen, token, (size_t)(d2 - token));
	}
	OPENSSL_free(der);
	if (!tried)
		return JWS_NOKEY;
	if (!ok)
		return JWS_BADSIG;
	*claims = body;
	return JWS_OK;
}
