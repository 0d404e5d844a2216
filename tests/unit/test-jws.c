/* test-jws.c - unit tests of lib/jws.c: RS256 and ES256 tokens verified with JWK Set keys made
 * here with OpenSSL, and every refusal (tampered payload or signature, "none", HS256 keyed with
 * the public key, unknown kid, "crit", malformed input, unusable keys in the set). */
#include <check.h>
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "httpc.h"
#include "jws.h"

static EVP_PKEY *rsa_key, *ec_key, *rsa_small;
static struct arena *A;

static char *b64u_bn(EVP_PKEY *k, const char *name, int pad)
{
	BIGNUM *bn = NULL;
	ck_assert(EVP_PKEY_get_bn_param(k, name, &bn));
	int n = pad ? pad : BN_num_bytes(bn);
	unsigned char *b = malloc((size_t)n);
	BN_bn2binpad(bn, b, n);
	char *s = httpc_b64url(A, b, (size_t)n);
	free(b);
	BN_free(bn);
	return s;
}

static char *jwks(void)
{
	return arena_printf(
		A,
		"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"},"
		"{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
		"{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"c2VjcmV0\"},"
		"{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"%s\",\"e\":\"AQAB\"}]}",
		b64u_bn(rsa_key, OSSL_PKEY_PARAM_RSA_N, 0),
		b64u_bn(rsa_key, OSSL_PKEY_PARAM_RSA_E, 0),
		b64u_bn(ec_key, OSSL_PKEY_PARAM_EC_PUB_X, 32),
		b64u_bn(ec_key, OSSL_PKEY_PARAM_EC_PUB_Y, 32),
		b64u_bn(rsa_key, OSSL_PKEY_PARAM_RSA_N, 0));
}

/* header.payload.signature with key (RS256 or ES256 by its type), or alg "none"/"HS256". */
static char *token(const char *header, const char *payload, EVP_PKEY *key)
{
	const char *signing = arena_printf(A, "%s.%s", httpc_b64url(A, header, strlen(header)),
					   httpc_b64url(A, payload, strlen(payload)));
	if (!key)
		return arena_printf(A, "%s.", signing);
	unsigned char sig[1024];
	size_t n = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ck_assert(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1);
	ck_assert(EVP_DigestSign(md, sig, &n, (const unsigned char *)signing, strlen(signing)) ==
		  1);
	EVP_MD_CTX_free(md);
	if (EVP_PKEY_is_a(key, "EC")) { /* DER -> r || s */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		unsigned char rs[64];
		BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32);
		ECDSA_SIG_free(es);
		memcpy(sig, rs, 64);
		n = 64;
	}
	return arena_printf(A, "%s.%s", signing, httpc_b64url(A, sig, n));
}

static const char claims[] = "{\"iss\":\"https://idp\",\"sub\":\"u1\",\"aud\":\"c\"}";

static void setup(void)
{
	A = arena_new(1 << 16);
	if (!rsa_key) {
		rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		rsa_small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
		ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	}
	ck_assert_ptr_nonnull(rsa_key);
	ck_assert_ptr_nonnull(ec_key);
}

static void teardown(void)
{
	arena_free(A);
}

static int verify(const char *tok, struct json_object **c)
{
	const char *j = jwks();
	struct jws_keyset *ks = jws_keyset_parse(j, strlen(j));
	ck_assert_ptr_nonnull(ks);
	ck_assert_uint_eq(jws_keyset_count(ks), 2); /* oct and enc keys are skipped */
	int v = jws_verify(A, ks, tok, c);
	jws_keyset_free(ks);
	return v;
}

START_TEST(test_rs256_and_es256)
{
	struct json_object *c = NULL;
	ck_assert_int_eq(verify(token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims, rsa_key), &c),
			 JWS_OK);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(c, "sub")), "u1");
	ck_assert_int_eq(verify(token("{\"alg\":\"ES256\",\"kid\":\"e1\"}", claims, ec_key), &c),
			 JWS_OK);
	/* without a kid every key of the type is tried */
	ck_assert_int_eq(verify(token("{\"alg\":\"ES256\"}", claims, ec_key), &c), JWS_OK);
}
END_TEST

START_TEST(test_tampering_refused)
{
	struct json_object *c = NULL;
	char *t = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims, rsa_key);
	/* another payload under the same signature */
	char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
	const char *other = "{\"iss\":\"https://idp\",\"sub\":\"admin\",\"aud\":\"c\"}";
	char *forged = arena_printf(A, "%.*s.%s%s", (int)(d1 - t), t,
				    httpc_b64url(A, other, strlen(other)), d2);
	ck_assert_int_eq(verify(forged, &c), JWS_BADSIG);
	ck_assert_ptr_null(c);
	/* one bit of the signature */
	char *flip = arena_strdup(A, t);
	size_t n = strlen(flip);
	flip[n - 5] = flip[n - 5] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(verify(flip, &c), JWS_BADSIG);
	/* an RS256 header on an EC signature, and the reverse */
	ck_assert_int_eq(verify(token("{\"alg\":\"RS256\"}", claims, ec_key), &c), JWS_BADSIG);
	ck_assert_int_eq(verify(token("{\"alg\":\"ES256\",\"kid\":\"r1\"}", claims, ec_key), &c),
			 JWS_NOKEY);
	/* a key the set does not have */
	ck_assert_int_eq(verify(token("{\"alg\":\"RS256\",\"kid\":\"zz\"}", claims, rsa_key), &c),
			 JWS_NOKEY);
}
END_TEST

START_TEST(test_algorithms_refused)
{
	struct json_object *c = NULL;
	ck_assert_int_eq(verify(token("{\"alg\":\"none\"}", claims, NULL), &c), JWS_MALFORMED);
	ck_assert_int_eq(
		verify(arena_printf(A, "%sAAAA", token("{\"alg\":\"none\"}", claims, NULL)), &c),
		JWS_ALG);
	/* HS256 keyed with the public key's modulus: the classic confusion */
	const char *h = "{\"alg\":\"HS256\",\"kid\":\"r1\"}";
	const char *signing = arena_printf(A, "%s.%s", httpc_b64url(A, h, strlen(h)),
					   httpc_b64url(A, claims, strlen(claims)));
	unsigned char mac[32];
	unsigned int ml = 32;
	const char *k = b64u_bn(rsa_key, OSSL_PKEY_PARAM_RSA_N, 0);
	HMAC(EVP_sha256(), k, (int)strlen(k), (const unsigned char *)signing, strlen(signing), mac,
	     &ml);
	ck_assert_int_eq(verify(arena_printf(A, "%s.%s", signing, httpc_b64url(A, mac, ml)), &c),
			 JWS_ALG);
	ck_assert_int_eq(verify(token("{\"alg\":\"RS256\",\"crit\":[\"x\"]}", claims, rsa_key), &c),
			 JWS_ALG);
	ck_assert_int_eq(verify(token("{\"alg\":\"RS512\"}", claims, rsa_key), &c), JWS_ALG);
}
END_TEST

START_TEST(test_malformed)
{
	struct json_object *c = NULL;
	static const char *const bad[] = {"",
					  "a",
					  "a.b",
					  "a.b.c.d",
					  "..",
					  "e30.e30.",
					  "e30=.e30.AAAA",
					  "W10.e30.AAAA",
					  "e30.bm90anNvbg.AAAA",
					  "e30.e30.A+/A"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(verify(bad[i], &c) == JWS_MALFORMED || verify(bad[i], &c) == JWS_ALG,
			      "%s", bad[i]);
	char *huge = arena_alloc(A, JWS_TOKEN_MAX + 10);
	memset(huge, 'a', JWS_TOKEN_MAX + 9);
	huge[JWS_TOKEN_MAX + 9] = '\0';
	ck_assert_int_eq(verify(huge, &c), JWS_MALFORMED);
	ck_assert_int_eq(verify(NULL, &c), JWS_MALFORMED);
}
END_TEST

START_TEST(test_unusable_sets)
{
	ck_assert_ptr_null(jws_keyset_parse("{}", 2));
	ck_assert_ptr_null(jws_keyset_parse("not json", 8));
	ck_assert_ptr_null(jws_keyset_parse(NULL, 0));
	/* a 1024-bit RSA key is ignored (RFC 7518 section 3.3), so is a point off the curve */
	const char *j =
		arena_printf(A,
			     "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"},"
			     "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
			     "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}",
			     b64u_bn(rsa_small, OSSL_PKEY_PARAM_RSA_N, 0),
			     httpc_b64url(A, "0123456789abcdef0123456789abcdef", 32),
			     httpc_b64url(A, "0123456789abcdef0123456789abcdef", 32));
	ck_assert_ptr_null(jws_keyset_parse(j, strlen(j)));
}
END_TEST

static Suite *jws_suite(void)
{
	Suite *s = suite_create("jws");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rs256_and_es256);
	tcase_add_test(tc, test_tampering_refused);
	tcase_add_test(tc, test_algorithms_refused);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_unusable_sets);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(jws_suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(rsa_small);
	EVP_PKEY_free(ec_key);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
