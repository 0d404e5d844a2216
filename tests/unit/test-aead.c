/* test-aead.c - unit tests of lib/aead.c: AES-256-GCM seal/open of secrets at rest, the "v1:"
 * text format, authentication failures (wrong key, wrong associated data, any modified byte),
 * known-answer vectors from the GCM specification, and master-key parsing. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aead.h"

static const unsigned char key_a[AEAD_KEY_BYTES] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
						    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
						    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
						    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

static void key_b(unsigned char k[AEAD_KEY_BYTES])
{
	memcpy(k, key_a, AEAD_KEY_BYTES);
	k[31] ^= 0x01; /* one bit away from key_a */
}

/* "v1:" + base64 of raw bytes given in hex: builds sealed values from published vectors. */
static char *sealed_from_hex(const char *hex)
{
	size_t n = strlen(hex) / 2;
	unsigned char *raw = malloc(n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		raw[i] = (unsigned char)v;
	}
	char *out = malloc(3 + 4 * ((n + 2) / 3) + 1);
	memcpy(out, "v1:", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, raw, (int)n);
	free(raw);
	return out;
}

START_TEST(test_roundtrip)
{
	const char *secret = "sk-proj-0123456789abcdefABCDEF";
	char *s = aead_seal(key_a, secret, strlen(secret), "u1/openai", 9);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(strncmp(s, "v1:", 3) == 0, "got %s", s);
	/* 12 + 30 + 16 = 58 bytes -> 80 base64 chars */
	ck_assert_uint_eq(strlen(s), 3 + 80);
	ck_assert_ptr_null(strstr(s, "sk-proj"));
	size_t n = 0;
	char *p = aead_open(key_a, s, "u1/openai", 9, &n);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, strlen(secret));
	ck_assert_str_eq(p, secret);
	aead_free(p, n);
	free(s);
}
END_TEST

START_TEST(test_empty_and_binary)
{
	char *s = aead_seal(key_a, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(s);
	size_t n = 99;
	char *p = aead_open(key_a, s, NULL, 0, &n);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, 0);
	ck_assert_str_eq(p, "");
	aead_free(p, n);
	free(s);

	const unsigned char bin[] = {0, 1, 0, 255, 0, 'x'};
	s = aead_seal(key_a, bin, sizeof bin, NULL, 0);
	ck_assert_ptr_nonnull(s);
	p = aead_open(key_a, s, NULL, 0, &n);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, sizeof bin);
	ck_assert_mem_eq(p, bin, sizeof bin);
	aead_free(p, n);
	free(s);
}
END_TEST

START_TEST(test_nonce_is_random)
{
	char *s1 = aead_seal(key_a, "same", 4, NULL, 0);
	char *s2 = aead_seal(key_a, "same", 4, NULL, 0);
	ck_assert_ptr_nonnull(s1);
	ck_assert_ptr_nonnull(s2);
	ck_assert_str_ne(s1, s2);
	/* the first 16 base64 chars are exactly the 12-byte nonce */
	ck_assert_msg(strncmp(s1 + 3, s2 + 3, 16) != 0, "nonce repeated");
	free(s1);
	free(s2);
}
END_TEST

START_TEST(test_wrong_key_fails)
{
	unsigned char kb[AEAD_KEY_BYTES];
	key_b(kb);
	char *s = aead_seal(key_a, "top secret", 10, NULL, 0);
	ck_assert_ptr_nonnull(s);
	size_t n = 7;
	ck_assert_ptr_null(aead_open(kb, s, NULL, 0, &n));
	ck_assert_uint_eq(n, 0);
	free(s);
}
END_TEST

START_TEST(test_wrong_aad_fails)
{
	char *s = aead_seal(key_a, "top secret", 10, "user-1/openai", 13);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(aead_open(key_a, s, "user-2/openai", 13, NULL));
	ck_assert_ptr_null(aead_open(key_a, s, "user-1/google", 13, NULL));
	ck_assert_ptr_null(aead_open(key_a, s, NULL, 0, NULL));
	char *p = aead_open(key_a, s, "user-1/openai", 13, NULL);
	ck_assert_ptr_nonnull(p);
	aead_free(p, 10);
	free(s);
}
END_TEST

/* Flipping any base64 character to another valid one changes at least one byte of nonce,
 * ciphertext or tag: every such value must fail to open. */
START_TEST(test_any_modified_byte_fails)
{
	char *s = aead_seal(key_a, "hello world", 11, NULL, 0);
	ck_assert_ptr_nonnull(s);
	size_t len = strlen(s);
	for (size_t i = 3; i < len; i++) {
		if (s[i] == '=')
			continue;
		char saved = s[i];
		s[i] = saved == 'A' ? 'B' : 'A';
		char *p = aead_open(key_a, s, NULL, 0, NULL);
		ck_assert_msg(p == NULL, "modified char %zu still opened", i);
		s[i] = saved;
	}
	char *p = aead_open(key_a, s, NULL, 0, NULL);
	ck_assert_ptr_nonnull(p);
	aead_free(p, 11);
	free(s);
}
END_TEST

START_TEST(test_malformed_input)
{
	char *s = aead_seal(key_a, "abc", 3, NULL, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(aead_open(key_a, NULL, NULL, 0, NULL));
	ck_assert_ptr_null(aead_open(key_a, "", NULL, 0, NULL));
	ck_assert_ptr_null(aead_open(key_a, "v1:", NULL, 0, NULL));
	ck_assert_ptr_null(aead_open(key_a, s + 3, NULL, 0, NULL)); /* no prefix */
	char *v2 = strdup(s);
	v2[1] = '2';
	ck_assert_ptr_null(aead_open(key_a, v2, NULL, 0, NULL)); /* unknown version */
	free(v2);
	char *trunc = strndup(s, strlen(s) - 4);
	ck_assert_ptr_null(aead_open(key_a, trunc, NULL, 0, NULL)); /* tag cut off */
	free(trunc);
	ck_assert_ptr_null(aead_open(key_a, "v1:AAAA", NULL, 0, NULL)); /* 3 bytes: too short */
	ck_assert_ptr_null(
		aead_open(key_a, "v1:!!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, 0, NULL));
	ck_assert_ptr_null(aead_open(key_a, "v1:AAA=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, 0,
				     NULL)); /* padding in the middle */
	char *spaced = malloc(strlen(s) + 2);
	sprintf(spaced, "%s ", s);
	ck_assert_ptr_null(aead_open(key_a, spaced, NULL, 0, NULL));
	free(spaced);
	free(s);
}
END_TEST

START_TEST(test_too_large_refused)
{
	size_t n = AEAD_MAX_PLAIN + 1;
	char *big = calloc(1, n);
	ck_assert_ptr_null(aead_seal(key_a, big, n, NULL, 0));
	char *s = aead_seal(key_a, big, AEAD_MAX_PLAIN, NULL, 0);
	ck_assert_ptr_nonnull(s);
	size_t got = 0;
	char *p = aead_open(key_a, s, NULL, 0, &got);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(got, AEAD_MAX_PLAIN);
	aead_free(p, got);
	free(s);
	free(big);
}
END_TEST

/* The GCM specification's AES-256 test cases 13 and 14 (McGrew & Viega, "The Galois/Counter
 * Mode of Operation", Appendix B): all-zero key and IV. They prove the format is plain
 * AES-256-GCM that any other implementation can open. */
START_TEST(test_known_answer_vectors)
{
	unsigned char zero[AEAD_KEY_BYTES] = {0};
	/* case 13: empty plaintext, T = 530f8afbc74536b9a963b4f1c4cb738b */
	char *s = sealed_from_hex("000000000000000000000000"
				  "530f8afbc74536b9a963b4f1c4cb738b");
	size_t n = 1;
	char *p = aead_open(zero, s, NULL, 0, &n);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, 0);
	aead_free(p, n);
	free(s);
	/* case 14: P = 16 zero bytes, C = cea7403d4d606b6e074ec5d3baf39d18,
	 * T = d0d1c8a799996bf0265b98b5d48ab919 */
	s = sealed_from_hex("000000000000000000000000"
			    "cea7403d4d606b6e074ec5d3baf39d18"
			    "d0d1c8a799996bf0265b98b5d48ab919");
	p = aead_open(zero, s, NULL, 0, &n);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, 16);
	unsigned char z16[16] = {0};
	ck_assert_mem_eq(p, z16, 16);
	aead_free(p, n);
	free(s);
	/* the same ciphertext with a wrong tag byte */
	s = sealed_from_hex("000000000000000000000000"
			    "cea7403d4d606b6e074ec5d3baf39d18"
			    "d0d1c8a799996bf0265b98b5d48ab918");
	ck_assert_ptr_null(aead_open(zero, s, NULL, 0, &n));
	free(s);
}
END_TEST

START_TEST(test_key_from_hex)
{
	unsigned char k[AEAD_KEY_BYTES];
	const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	ck_assert_int_eq(aead_key_from_hex(hex, k), 0);
	ck_assert_mem_eq(k, key_a, AEAD_KEY_BYTES);
	ck_assert_int_eq(aead_key_from_hex("  000102030405060708090A0B0C0D0E0F"
					   "101112131415161718191A1B1C1D1E1F\n",
					   k),
			 0);
	ck_assert_mem_eq(k, key_a, AEAD_KEY_BYTES);
	ck_assert_int_eq(aead_key_from_hex(NULL, k), -1);
	ck_assert_int_eq(aead_key_from_hex("", k), -1);
	ck_assert_int_eq(aead_key_from_hex("00010203", k), -1); /* short */
	ck_assert_int_eq(aead_key_from_hex("000102030405060708090a0b0c0d0e0f"
					   "101112131415161718191a1b1c1d1e1f00",
					   k),
			 -1); /* long */
	ck_assert_int_eq(aead_key_from_hex("g00102030405060708090a0b0c0d0e0f"
					   "101112131415161718191a1b1c1d1e1",
					   k),
			 -1); /* not hex */
	unsigned char zero[AEAD_KEY_BYTES] = {0};
	ck_assert_mem_eq(k, zero, AEAD_KEY_BYTES); /* a refused key leaves zeros behind */
}
END_TEST

static Suite *aead_suite(void)
{
	Suite *s = suite_create("aead");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_empty_and_binary);
	tcase_add_test(tc, test_nonce_is_random);
	tcase_add_test(tc, test_wrong_key_fails);
	tcase_add_test(tc, test_wrong_aad_fails);
	tcase_add_test(tc, test_any_modified_byte_fails);
	tcase_add_test(tc, test_malformed_input);
	tcase_add_test(tc, test_too_large_refused);
	tcase_add_test(tc, test_known_answer_vectors);
	tcase_add_test(tc, test_key_from_hex);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(aead_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
