/* test-auth.c - unit tests of lib/auth.c: HS256 issue and verification, expiry, algorithm
 * confusion (none, HS384/HS512), tampering, malformed and hostile input. */
#include <check.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static const unsigned char key[] = "0123456789abcdef0123456789abcdef-test-key";
#define KEYLEN (sizeof(key) - 1)
static const unsigned char other_key[] = "fedcba9876543210fedcba9876543210-other-key";

#define NOW 1700000000LL

static struct auth_claims claims(void)
{
	struct auth_claims c;
	memset(&c, 0, sizeof(c));
	strcpy(c.sub, "11111111-1111-4111-8111-111111111111");
	strcpy(c.tid, "00000000-0000-0000-0000-000000000001");
	strcpy(c.jti, "22222222-2222-4222-8222-222222222222");
	c.iat_s = NOW;
	c.exp_s = NOW + 3600;
	return c;
}

/* A token built directly with libjwt: alg, key and a grants JSON chosen by the test. */
static char *craft(jwt_alg_t alg, const unsigned char *k, size_t klen, const char *grants)
{
	jwt_t *j = NULL;
	ck_assert_int_eq(jwt_new(&j), 0);
	ck_assert_int_eq(jwt_add_grants_json(j, grants), 0);
	ck_assert_int_eq(jwt_set_alg(j, alg, k, (int)klen), 0);
	char *t = jwt_encode_str(j);
	jwt_free(j);
	ck_assert_ptr_nonnull(t);
	return t;
}

static const char good_grants[] =
	"{\"sub\":\"11111111-1111-4111-8111-111111111111\","
	"\"tid\":\"00000000-0000-0000-0000-000000000001\","
	"\"jti\":\"22222222-2222-4222-8222-222222222222\",\"iat\":1700000000,\"exp\":1700003600}";

START_TEST(test_roundtrip)
{
	struct auth_claims c = claims(), out;
	char *t = auth_issue(&c, key, KEYLEN);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW + 10, &out), AUTH_OK);
	ck_assert_str_eq(out.sub, c.sub);
	ck_assert_str_eq(out.tid, c.tid);
	ck_assert_str_eq(out.jti, c.jti);
	ck_assert_int_eq(out.iat_s, NOW);
	ck_assert_int_eq(out.exp_s, NOW + 3600);
	free(t);
}
END_TEST

START_TEST(test_header_is_hs256)
{
	struct auth_claims c = claims();
	char *t = auth_issue(&c, key, KEYLEN);
	jwt_t *j = NULL;
	ck_assert_int_eq(jwt_decode(&j, t, key, KEYLEN), 0);
	ck_assert_int_eq(jwt_get_alg(j), JWT_ALG_HS256);
	jwt_free(j);
	free(t);
}
END_TEST

START_TEST(test_expiry)
{
	struct auth_claims c = claims(), out;
	char *t = auth_issue(&c, key, KEYLEN);
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW + 3599, &out), AUTH_OK);
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW + 3600, &out), AUTH_EXPIRED);
	ck_assert_str_eq(out.sub, c.sub); /* claims are reported for an expired genuine token */
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW + 999999, &out), AUTH_EXPIRED);
	free(t);
}
END_TEST

START_TEST(test_wrong_key)
{
	struct auth_claims c = claims(), out;
	char *t = auth_issue(&c, key, KEYLEN);
	ck_assert_int_eq(auth_verify(t, other_key, sizeof(other_key) - 1, NOW, &out), AUTH_INVALID);
	ck_assert_str_eq(out.sub, ""); /* nothing leaks out of a refused token */
	free(t);
}
END_TEST

START_TEST(test_expired_with_wrong_key_is_invalid)
{
	/* "Token expired" must only be said of genuine tokens */
	struct auth_claims c = claims(), out;
	char *t = auth_issue(&c, other_key, sizeof(other_key) - 1);
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW + 999999, &out), AUTH_INVALID);
	free(t);
}
END_TEST

START_TEST(test_tampered_signature)
{
	struct auth_claims c = claims(), out;
	char *t = auth_issue(&c, key, KEYLEN);
	size_t n = strlen(t);
	t[n - 2] = t[n - 2] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW, &out), AUTH_INVALID);
	free(t);
}
END_TEST

START_TEST(test_tampered_payload)
{
	/* a payload from another token with the first token's signature */
	struct auth_claims a = claims(), b = claims(), out;
	strcpy(b.sub, "33333333-3333-4333-8333-333333333333");
	char *ta = auth_issue(&a, key, KEYLEN);
	char *tb = auth_issue(&b, key, KEYLEN);
	char *sa = strrchr(ta, '.');
	char *sb = strrchr(tb, '.');
	char mixed[2048];
	snprintf(mixed, sizeof(mixed), "%.*s%s", (int)(sb - tb), tb, sa);
	ck_assert_int_eq(auth_verify(mixed, key, KEYLEN, NOW, &out), AUTH_INVALID);
	free(ta);
	free(tb);
}
END_TEST

START_TEST(test_alg_none_rejected)
{
	struct auth_claims out;
	char *t = craft(JWT_ALG_NONE, NULL, 0, good_grants);
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW, &out), AUTH_INVALID);
	/* the same with a signature part appended */
	char buf[2048];
	snprintf(buf, sizeof(buf), "%sAAAA", t);
	ck_assert_int_eq(auth_verify(buf, key, KEYLEN, NOW, &out), AUTH_INVALID);
	free(t);
}
END_TEST

START_TEST(test_alg_none_handmade)
{
	/* {"alg":"none","typ":"JWT"} . good payload . (empty and non-empty signature) */
	struct auth_claims out;
	const char *h = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
	char *t = craft(JWT_ALG_HS256, key, KEYLEN, good_grants);
	char *p1 = strchr(t, '.') + 1;
	char *p2 = strrchr(t, '.');
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s.%.*s.", h, (int)(p2 - p1), p1);
	ck_assert_int_eq(auth_verify(buf, key, KEYLEN, NOW, &out), AUTH_INVALID);
	snprintf(buf, sizeof(buf), "%s.%.*s%s", h, (int)(p2 - p1), p1, p2);
	ck_assert_int_eq(auth_verify(buf, key, KEYLEN, NOW, &out), AUTH_INVALID);
	free(t);
}
END_TEST

START_TEST(test_other_hmac_algs_rejected)
{
	struct auth_claims out;
	char *t384 = craft(JWT_ALG_HS384, key, KEYLEN, good_grants);
	char *t512 = craft(JWT_ALG_HS512, key, KEYLEN, good_grants);
	ck_assert_int_eq(auth_verify(t384, key, KEYLEN, NOW, &out), AUTH_INVALID);
	ck_assert_int_eq(auth_verify(t512, key, KEYLEN, NOW, &out), AUTH_INVALID);
	free(t384);
	free(t512);
}
END_TEST

START_TEST(test_crafted_hs256_accepted)
{
	/* a token made by libjwt with the same claims verifies: interoperable format */
	struct auth_claims out;
	char *t = craft(JWT_ALG_HS256, key, KEYLEN, good_grants);
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW, &out), AUTH_OK);
	ck_assert_str_eq(out.jti, "22222222-2222-4222-8222-222222222222");
	free(t);
}
END_TEST

START_TEST(test_missing_or_bad_claims)
{
	struct auth_claims out;
	static const char *const grants[] = {
		/* no jti */
		"{\"sub\":\"u\",\"tid\":\"t\",\"iat\":1700000000,\"exp\":1700003600}",
		/* no exp */
		"{\"sub\":\"u\",\"tid\":\"t\",\"jti\":\"j\",\"iat\":1700000000}",
		/* exp as a string */
		"{\"sub\":\"u\",\"tid\":\"t\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":\"1700003600\"}",
		/* sub as a number */
		"{\"sub\":5,\"tid\":\"t\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700003600}",
		/* empty tid */
		"{\"sub\":\"u\",\"tid\":\"\",\"jti\":\"j\",\"iat\":1700000000,\"exp\":1700003600}",
		/* no iat */
		"{\"sub\":\"u\",\"tid\":\"t\",\"jti\":\"j\",\"exp\":1700003600}",
	};
	for (size_t i = 0; i < sizeof(grants) / sizeof(grants[0]); i++) {
		char *t = craft(JWT_ALG_HS256, key, KEYLEN, grants[i]);
		ck_assert_msg(auth_verify(t, key, KEYLEN, NOW, &out) == AUTH_INVALID, "grants %zu",
			      i);
		free(t);
	}
}
END_TEST

START_TEST(test_malformed)
{
	struct auth_claims out;
	static const char *const bad[] = {
		"",
		".",
		"..",
		"abc",
		"abc.def",
		"abc.def.",
		"a.b.c.d",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.!!!",
		"eyJhbGciOiJIUzI1NiJ9..sig",
		".eyJzdWIiOiJ4In0.sig",
		"eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
		"bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln",
		"eyJhbGciOiJIUzI1NiJ9 .eyJzdWIiOiJ4In0.c2ln",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(auth_verify(bad[i], key, KEYLEN, NOW, &out) == AUTH_INVALID,
			      "input %zu", i);
	ck_assert_int_eq(auth_verify(NULL, key, KEYLEN, NOW, &out), AUTH_INVALID);
}
END_TEST

START_TEST(test_oversized_token)
{
	struct auth_claims out;
	size_t n = AUTH_TOKEN_MAX + 10;
	char *t = malloc(n + 1);
	memset(t, 'A', n);
	t[100] = '.';
	t[200] = '.';
	t[n] = '\0';
	ck_assert_int_eq(auth_verify(t, key, KEYLEN, NOW, &out), AUTH_INVALID);
	free(t);
}
END_TEST

START_TEST(test_short_key_refused)
{
	struct auth_claims c = claims(), out;
	ck_assert_ptr_null(auth_issue(&c, key, AUTH_KEY_MIN - 1));
	char *t = auth_issue(&c, key, KEYLEN);
	ck_assert_int_eq(auth_verify(t, key, AUTH_KEY_MIN - 1, NOW, &out), AUTH_ERROR);
	free(t);
}
END_TEST

START_TEST(test_issue_refuses_bad_claims)
{
	struct auth_claims c = claims();
	strcpy(c.jti, "");
	ck_assert_ptr_null(auth_issue(&c, key, KEYLEN));
	c = claims();
	strcpy(c.sub, "has space");
	ck_assert_ptr_null(auth_issue(&c, key, KEYLEN));
	ck_assert_ptr_null(auth_issue(NULL, key, KEYLEN));
}
END_TEST

START_TEST(test_unique_tokens_per_jti)
{
	struct auth_claims a = claims(), b = claims();
	strcpy(b.jti, "44444444-4444-4444-8444-444444444444");
	char *ta = auth_issue(&a, key, KEYLEN);
	char *tb = auth_issue(&b, key, KEYLEN);
	ck_assert_str_ne(ta, tb);
	free(ta);
	free(tb);
}
END_TEST

START_TEST(test_cache_hits_and_rechecks_expiry)
{
	struct auth_cache *cache = auth_cache_new(1); /* one slot: every token competes */
	struct auth_claims c = claims(), out;
	char *t = auth_issue(&c, key, KEYLEN);
	ck_assert_int_eq(auth_verify_cached(cache, t, key, KEYLEN, NOW, &out), AUTH_OK);
	ck_assert_str_eq(out.jti, c.jti);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(auth_verify_cached(cache, t, key, KEYLEN, NOW + 1, &out), AUTH_OK);
	ck_assert_str_eq(out.sub, c.sub); /* served from the cache */
	ck_assert_int_eq(out.exp_s, c.exp_s);
	/* a cached token still expires */
	ck_assert_int_eq(auth_verify_cached(cache, t, key, KEYLEN, NOW + 3600, &out), AUTH_EXPIRED);
	free(t);
	auth_cache_free(cache);
}
END_TEST

START_TEST(test_cache_never_accepts_other_bytes)
{
	struct auth_cache *cache = auth_cache_new(4);
	struct auth_claims c = claims(), out;
	char *t = auth_issue(&c, key, KEYLEN);
	ck_assert_int_eq(auth_verify_cached(cache, t, key, KEYLEN, NOW, &out), AUTH_OK);
	/* same length, one signature character changed: verified afresh, refused */
	char *bad = strdup(t);
	size_t n = strlen(bad);
	bad[n - 3] = bad[n - 3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(auth_verify_cached(cache, bad, key, KEYLEN, NOW, &out), AUTH_INVALID);
	ck_assert_int_eq(auth_verify_cached(cache, bad, key, KEYLEN, NOW, &out), AUTH_INVALID);
	/* a prefix of a cached token */
	bad[n - 1] = '\0';
	ck_assert_int_eq(auth_verify_cached(cache, bad, key, KEYLEN, NOW, &out), AUTH_INVALID);
	/* refused tokens are not cached; the genuine one still hits */
	ck_assert_int_eq(auth_verify_cached(cache, t, key, KEYLEN, NOW, &out), AUTH_OK);
	/* another key never shares the cache in practice, but a NULL cache is plain verify */
	ck_assert_int_eq(auth_verify_cached(NULL, t, key, KEYLEN, NOW, &out), AUTH_OK);
	ck_assert_int_eq(auth_verify_cached(cache, NULL, key, KEYLEN, NOW, &out), AUTH_INVALID);
	free(bad);
	free(t);
	auth_cache_free(cache);
}
END_TEST

START_TEST(test_cache_slot_replacement)
{
	struct auth_cache *cache = auth_cache_new(1);
	struct auth_claims a = claims(), b = claims(), out;
	strcpy(b.sub, "33333333-3333-4333-8333-333333333333");
	char *ta = auth_issue(&a, key, KEYLEN);
	char *tb = auth_issue(&b, key, KEYLEN);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(auth_verify_cached(cache, ta, key, KEYLEN, NOW, &out), AUTH_OK);
		ck_assert_str_eq(out.sub, a.sub);
		ck_assert_int_eq(auth_verify_cached(cache, tb, key, KEYLEN, NOW, &out), AUTH_OK);
		ck_assert_str_eq(out.sub, b.sub);
	}
	free(ta);
	free(tb);
	auth_cache_free(cache);
	auth_cache_free(NULL);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_header_is_hs256);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_wrong_key);
	tcase_add_test(tc, test_expired_with_wrong_key_is_invalid);
	tcase_add_test(tc, test_tampered_signature);
	tcase_add_test(tc, test_tampered_payload);
	tcase_add_test(tc, test_alg_none_rejected);
	tcase_add_test(tc, test_alg_none_handmade);
	tcase_add_test(tc, test_other_hmac_algs_rejected);
	tcase_add_test(tc, test_crafted_hs256_accepted);
	tcase_add_test(tc, test_missing_or_bad_claims);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_oversized_token);
	tcase_add_test(tc, test_short_key_refused);
	tcase_add_test(tc, test_issue_refuses_bad_claims);
	tcase_add_test(tc, test_unique_tokens_per_jti);
	tcase_add_test(tc, test_cache_hits_and_rechecks_expiry);
	tcase_add_test(tc, test_cache_never_accepts_other_bytes);
	tcase_add_test(tc, test_cache_slot_replacement);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
