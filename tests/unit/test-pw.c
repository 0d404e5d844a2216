/* test-pw.c - unit tests of lib/pw.c: argon2id hashing, argon2/bcrypt verification, PHC
 * parsing, rehash decisions, the dummy verification, and hostile stored hashes. */
#include <argon2.h>
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pw.h"

/* Small parameters keep the suite fast; the code paths are the same as production's. */
static const struct pw_params small = {.m_kib = 256, .t = 1, .p = 1};

/* Made with Python's crypt.crypt("password123", crypt.mksalt(crypt.METHOD_BLOWFISH)), i.e.
 * libxcrypt, cost 10: a real legacy hash of the kind the original system stored. */
static const char bcrypt_password123[] =
	"$2b$10$fHsvI7qTXOxSIlmxm5.vZOay/g0AmlyRHrgjmfRiU4x80SAV9Zp3m";

START_TEST(test_hash_verify_roundtrip)
{
	char h[PW_HASH_MAX];

	ck_assert_int_eq(pw_hash(&small, "correct horse", h, sizeof h), 0);
	ck_assert_msg(strncmp(h, "$argon2id$v=19$m=256,t=1,p=1$", 29) == 0, "got %s", h);
	ck_assert_int_eq(pw_verify(h, "correct horse"), PW_OK);
}
END_TEST

START_TEST(test_mismatch)
{
	char h[PW_HASH_MAX];

	ck_assert_int_eq(pw_hash(&small, "correct horse", h, sizeof h), 0);
	ck_assert_int_eq(pw_verify(h, "correct horsE"), PW_MISMATCH);
	ck_assert_int_eq(pw_verify(h, ""), PW_MISMATCH);
	ck_assert_int_eq(pw_verify(h, "correct horse "), PW_MISMATCH);
}
END_TEST

START_TEST(test_empty_and_long_passwords)
{
	char h[PW_HASH_MAX];
	char longpw[4097];

	ck_assert_int_eq(pw_hash(&small, "", h, sizeof h), 0);
	ck_assert_int_eq(pw_verify(h, ""), PW_OK);
	ck_assert_int_eq(pw_verify(h, "x"), PW_MISMATCH);
	memset(longpw, 'a', sizeof longpw - 1);
	longpw[sizeof longpw - 1] = '\0';
	ck_assert_int_eq(pw_hash(&small, longpw, h, sizeof h), 0);
	ck_assert_int_eq(pw_verify(h, longpw), PW_OK);
	longpw[4000] = 'b'; /* argon2 has no 72-byte truncation, unlike bcrypt */
	ck_assert_int_eq(pw_verify(h, longpw), PW_MISMATCH);
}
END_TEST

START_TEST(test_salt_is_random)
{
	char a[PW_HASH_MAX], b[PW_HASH_MAX];

	ck_assert_int_eq(pw_hash(&small, "same", a, sizeof a), 0);
	ck_assert_int_eq(pw_hash(&small, "same", b, sizeof b), 0);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(pw_verify(a, "same"), PW_OK);
	ck_assert_int_eq(pw_verify(b, "same"), PW_OK);
}
END_TEST

START_TEST(test_phc_fields)
{
	const struct pw_params pp = {.m_kib = 1024, .t = 3, .p = 2};
	struct pw_params got = {0, 0, 0};
	char h[PW_HASH_MAX];
	const char *salt, *tag;

	ck_assert_int_eq(pw_hash(&pp, "pw", h, sizeof h), 0);
	ck_assert_int_eq(pw_params_of(h, &got), 0);
	ck_assert_uint_eq(got.m_kib, 1024);
	ck_assert_uint_eq(got.t, 3);
	ck_assert_uint_eq(got.p, 2);
	/* $argon2id$v=19$m=1024,t=3,p=2$<salt>$<tag>: 16-byte salt = 22 base64 characters,
	 * 32-byte tag = 43. */
	salt = strchr(h + 1, '$');
	salt = strchr(salt + 1, '$');
	salt = strchr(salt + 1, '$') + 1;
	tag = strchr(salt, '$');
	ck_assert_ptr_nonnull(tag);
	ck_assert_int_eq((int)(tag - salt), 22);
	ck_assert_int_eq((int)strlen(tag + 1), 43);

	/* A hash made elsewhere (the reference argon2 CLI format) parses too. */
	ck_assert_int_eq(pw_params_of("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$"
				      "GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
				      &got),
			 0);
	ck_assert_uint_eq(got.m_kib, 19456);
	ck_assert_uint_eq(got.t, 2);
	ck_assert_uint_eq(got.p, 1);
	ck_assert_int_eq(pw_params_of(bcrypt_password123, &got), -1);
}
END_TEST

START_TEST(test_needs_rehash)
{
	const struct pw_params more_m = {.m_kib = 512, .t = 1, .p = 1};
	const struct pw_params more_t = {.m_kib = 256, .t = 2, .p = 1};
	const struct pw_params more_p = {.m_kib = 256, .t = 1, .p = 2};
	char h[PW_HASH_MAX], hi[PW_HASH_MAX];
	const unsigned char salt[16] = "0123456789abcde";

	ck_assert_int_eq(pw_hash(&small, "pw", h, sizeof h), 0);
	ck_assert(!pw_needs_rehash(h, &small));
	ck_assert(pw_needs_rehash(h, &more_m));
	ck_assert(pw_needs_rehash(h, &more_t));
	ck_assert(pw_needs_rehash(h, &more_p));
	ck_assert(pw_needs_rehash(bcrypt_password123, &small));
	ck_assert(pw_needs_rehash("garbage", &small));
	ck_assert(pw_needs_rehash(NULL, &small));
	/* argon2i with the current parameters still moves to argon2id. */
	ck_assert_int_eq(
		argon2i_hash_encoded(1, 256, 1, "pw", 2, salt, sizeof salt, 32, hi, sizeof hi),
		ARGON2_OK);
	ck_assert(pw_needs_rehash(hi, &small));
}
END_TEST

START_TEST(test_argon2i_verifies)
{
	const unsigned char salt[16] = "0123456789abcde";
	char hi[PW_HASH_MAX];

	ck_assert_int_eq(
		argon2i_hash_encoded(2, 256, 1, "legacy", 6, salt, sizeof salt, 32, hi, sizeof hi),
		ARGON2_OK);
	ck_assert_int_eq(pw_verify(hi, "legacy"), PW_OK);
	ck_assert_int_eq(pw_verify(hi, "Legacy"), PW_MISMATCH);
}
END_TEST

START_TEST(test_bcrypt_legacy)
{
	char variant[sizeof bcrypt_password123];

	ck_assert_int_eq(pw_verify(bcrypt_password123, "password123"), PW_OK);
	ck_assert_int_eq(pw_verify(bcrypt_password123, "password124"), PW_MISMATCH);
	ck_assert_int_eq(pw_verify(bcrypt_password123, ""), PW_MISMATCH);
	/* $2a$ and $2y$ spell the same algorithm for ASCII passwords: same tag. */
	memcpy(variant, bcrypt_password123, sizeof variant);
	variant[2] = 'a';
	ck_assert_int_eq(pw_verify(variant, "password123"), PW_OK);
	variant[2] = 'y';
	ck_assert_int_eq(pw_verify(variant, "password123"), PW_OK);
	/* One flipped tag character is a mismatch, not an error. */
	memcpy(variant, bcrypt_password123, sizeof variant);
	variant[50] = variant[50] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(pw_verify(variant, "password123"), PW_MISMATCH);
}
END_TEST

START_TEST(test_malformed_is_error)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"$",
		"$argon2id$",
		"$argon2id$v=19$",
		"$argon2id$v=19$m=abc,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$",
		"$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ",
		"$argon2id$v=19$m=256,t=1,p=1$$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$argon2id$v=19$m=4,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$argon2id$v=19$m=99999999999,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$argon2id$v=18$m=256,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo$extra",
		"$argon2id$v=19$m=0256,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$argon2d$v=19$m=256,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo",
		"$2b$10$short",
		"$2b$99$fHsvI7qTXOxSIlmxm5.vZOay/g0AmlyRHrgjmfRiU4x80SAV9Zp3m",
		"$2b$10$fHsvI7qTXOxSIlmxm5.vZOay/g0AmlyRHrgjmfRiU4x80SAV9Zp3!",
		"$2x$10$fHsvI7qTXOxSIlmxm5.vZOay/g0AmlyRHrgjmfRiU4x80SAV9Zp3m",
		"$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", /* md5-crypt: never handed to crypt(3) */
		"$6$saltsalt$abcdefghijklmnop",
		"*0",
	};
	char h[PW_HASH_MAX];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(pw_verify(bad[i], "password123") == PW_ERROR, "case %zu: %s", i,
			      bad[i]);
	ck_assert_int_eq(pw_verify(NULL, "x"), PW_ERROR);
	/* A truncated real hash is an error, not a mismatch and never a match. */
	ck_assert_int_eq(pw_hash(&small, "pw", h, sizeof h), 0);
	h[strlen(h) - 2] = '\0'; /* 41 base64 characters cannot be a whole number of bytes */
	ck_assert_int_eq(pw_verify(h, "pw"), PW_ERROR);
	*strrchr(h, '$') = '\0'; /* tag gone */
	ck_assert_int_eq(pw_verify(h, "pw"), PW_ERROR);
	ck_assert_int_eq(pw_verify(bcrypt_password123, NULL), PW_ERROR);
}
END_TEST

START_TEST(test_hash_refuses_bad_input)
{
	const struct pw_params zero_t = {.m_kib = 256, .t = 0, .p = 1};
	const struct pw_params tiny_m = {.m_kib = 8, .t = 1, .p = 2};
	char h[PW_HASH_MAX];
	char tiny[20];

	ck_assert_int_eq(pw_hash(&zero_t, "pw", h, sizeof h), -1);
	ck_assert_str_eq(h, "");
	ck_assert_int_eq(pw_hash(&tiny_m, "pw", h, sizeof h), -1);
	ck_assert_int_eq(pw_hash(NULL, "pw", h, sizeof h), -1);
	ck_assert_int_eq(pw_hash(&small, NULL, h, sizeof h), -1);
	ck_assert_int_eq(pw_hash(&small, "pw", tiny, sizeof tiny), -1);
	ck_assert_str_eq(tiny, "");
}
END_TEST


/* The dummy path must cost about what a real verification costs; a dummy that returned at
 * once would let response times reveal which emails exist. */
/* The dummy path of an unknown email runs argon2id with exactly the configured m, t and p:
 * its tag is the one argon2id gives with those parameters, and another m, t or p gives
 * another tag. (How long each path takes is measured in bench/auth/dummy-verify, not here.) */
START_TEST(test_dummy_verify_runs_the_configured_argon2)
{
	static const unsigned char salt[16] = "dummy-verify-slt";
	static const char input[] = "dummy password for an unknown account";
	const struct pw_params pp = {.m_kib = 8192, .t = 2, .p = 1};
	unsigned char got[PW_TAG_LEN], want[PW_TAG_LEN], other[PW_TAG_LEN];

	ck_assert_int_eq(pw_dummy_tag(&pp, got), 0);
	ck_assert_int_eq(argon2id_hash_raw(2, 8192, 1, input, sizeof input - 1, salt, sizeof salt,
					   want, sizeof want),
			 ARGON2_OK);
	ck_assert(memcmp(got, want, sizeof got) == 0);
	const struct pw_params more_t = {.m_kib = 8192, .t = 3, .p = 1};
	ck_assert_int_eq(pw_dummy_tag(&more_t, other), 0);
	ck_assert(memcmp(got, other, sizeof got) != 0);
	const struct pw_params more_m = {.m_kib = 16384, .t = 2, .p = 1};
	ck_assert_int_eq(pw_dummy_tag(&more_m, other), 0);
	ck_assert(memcmp(got, other, sizeof got) != 0);
	ck_assert_int_eq(pw_dummy_tag(NULL, other), -1);
	pw_dummy_verify(&pp);
	pw_dummy_verify(NULL); /* no crash */
}
END_TEST

struct thread_arg {
	int id;
	int failures;
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;
	char pw[32], h[PW_HASH_MAX];

	for (int i = 0; i < 8; i++) {
		snprintf(pw, sizeof pw, "pw-%d-%d", a->id, i);
		if (pw_hash(&small, pw, h, sizeof h) != 0 || pw_verify(h, pw) != PW_OK ||
		    pw_verify(h, "other") != PW_MISMATCH ||
		    pw_verify(bcrypt_password123, "password123") != PW_OK)
			a->failures++;
	}
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t th[4];
	struct thread_arg args[4];

	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){.id = i, .failures = 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].failures, 0);
	}
}
END_TEST

static Suite *pw_suite(void)
{
	Suite *s = suite_create("pw");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hash_verify_roundtrip);
	tcase_add_test(tc, test_mismatch);
	tcase_add_test(tc, test_empty_and_long_passwords);
	tcase_add_test(tc, test_salt_is_random);
	tcase_add_test(tc, test_phc_fields);
	tcase_add_test(tc, test_needs_rehash);
	tcase_add_test(tc, test_argon2i_verifies);
	tcase_add_test(tc, test_bcrypt_legacy);
	tcase_add_test(tc, test_malformed_is_error);
	tcase_add_test(tc, test_hash_refuses_bad_input);
	tcase_add_test(tc, test_dummy_verify_runs_the_configured_argon2);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pw_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
