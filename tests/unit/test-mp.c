/* test-mp.c - unit tests of lib/mp.c: multipart/form-data boundaries and bodies (RFC 7578,
 * RFC 2046 section 5.1.1), well-formed and hostile. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "mp.h"

static struct arena *A;

static void setup(void)
{
	A = arena_new(4096);
}

static void teardown(void)
{
	arena_free(A);
}

START_TEST(test_boundary)
{
	ck_assert_str_eq(mp_boundary(A, "multipart/form-data; boundary=abc"), "abc");
	ck_assert_str_eq(mp_boundary(A, "Multipart/Form-Data;charset=utf-8; boundary=\"a b;c\""),
			 "a b;c");
	ck_assert_str_eq(mp_boundary(A, "multipart/form-data; boundary=xyz; charset=x"), "xyz");
	ck_assert_ptr_null(mp_boundary(A, NULL));
	ck_assert_ptr_null(mp_boundary(A, "application/json; boundary=abc"));
	ck_assert_ptr_null(mp_boundary(A, "multipart/form-data"));
	ck_assert_ptr_null(mp_boundary(A, "multipart/form-data; boundary="));
	ck_assert_ptr_null(mp_boundary(A, "multipart/form-data; boundary=\"unterminated"));
	char long_ct[128] = "multipart/form-data; boundary=";
	memset(long_ct + strlen(long_ct), 'x', 71); /* RFC 2046: at most 70 */
	ck_assert_ptr_null(mp_boundary(A, long_ct));
}
END_TEST

static const char two_parts[] = "preamble\r\n"
				"--XB\r\n"
				"Content-Disposition: form-data; name=\"product_id\"\r\n"
				"\r\n"
				"p-1\r\n"
				"--XB  \r\n"
				"Content-Disposition: form-data; name=\"file\"; "
				"filename=\"dir\\\\a \\\"b\\\".md\"\r\n"
				"Content-Type: Text/Markdown; charset=utf-8\r\n"
				"\r\n"
				"# T\r\nline\r\n"
				"--XB--\r\n"
				"epilogue";

START_TEST(test_parse_parts)
{
	struct mp_part p[4];
	int n = mp_parse(A, two_parts, sizeof(two_parts) - 1, "XB", p, 4);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(p[0].name, "product_id");
	ck_assert_ptr_null(p[0].filename);
	ck_assert_ptr_null(p[0].ctype);
	ck_assert_int_eq(p[0].len, 3);
	ck_assert(memcmp(p[0].data, "p-1", 3) == 0);
	ck_assert_str_eq(p[1].name, "file");
	ck_assert_str_eq(p[1].filename, "dir\\a \"b\".md");
	ck_assert_str_eq(p[1].ctype, "text/markdown");
	ck_assert_int_eq(p[1].len, strlen("# T\r\nline"));
	ck_assert(memcmp(p[1].data, "# T\r\nline", p[1].len) == 0);
}
END_TEST

START_TEST(test_parse_without_preamble_or_headers)
{
	static const char b[] = "--B\r\n\r\nraw\r\n--B--";
	struct mp_part p[2];
	ck_assert_int_eq(mp_parse(A, b, sizeof(b) - 1, "B", p, 2), 1);
	ck_assert_str_eq(p[0].name, "");
	ck_assert_int_eq(p[0].len, 3);
}
END_TEST

START_TEST(test_parse_hostile)
{
	struct mp_part p[2];
	/* no delimiter at all, no close delimiter, garbage after a delimiter */
	ck_assert_int_eq(mp_parse(A, "hello", 5, "B", p, 2), -1);
	ck_assert_int_eq(mp_parse(A, "--B\r\n\r\ndata", 11, "B", p, 2), -1);
	ck_assert_int_eq(mp_parse(A, "--Bxx\r\n\r\nd\r\n--B--", 17, "B", p, 2), -1);
	/* more parts than allowed */
	static const char three[] = "--B\r\n\r\n1\r\n--B\r\n\r\n2\r\n--B\r\n\r\n3\r\n--B--";
	ck_assert_int_eq(mp_parse(A, three, sizeof(three) - 1, "B", p, 2), -1);
	/* a header without a colon; a NUL inside a header */
	static const char nocolon[] = "--B\r\nbroken\r\n\r\nd\r\n--B--";
	ck_assert_int_eq(mp_parse(A, nocolon, sizeof(nocolon) - 1, "B", p, 2), -1);
	static const char nul[] =
		"--B\r\nContent-Disposition: form-data; name=\"a\0b\"\r\n\r\nd\r\n--B--";
	ck_assert_int_eq(mp_parse(A, nul, sizeof(nul) - 1, "B", p, 2), -1);
	/* a disposition other than form-data */
	static const char att[] = "--B\r\nContent-Disposition: attachment\r\n\r\nd\r\n--B--";
	ck_assert_int_eq(mp_parse(A, att, sizeof(att) - 1, "B", p, 2), -1);
	/* a header block longer than MP_MAX_HEADER_BYTES */
	size_t big = MP_MAX_HEADER_BYTES + 64;
	char *h = malloc(big + 64);
	size_t n = (size_t)sprintf(h, "--B\r\nX-Pad: ");
	memset(h + n, 'a', big);
	n += big;
	n += (size_t)sprintf(h + n, "\r\n\r\nd\r\n--B--");
	ck_assert_int_eq(mp_parse(A, h, n, "B", p, 2), -1);
	free(h);
	/* an empty body */
	ck_assert_int_eq(mp_parse(A, NULL, 0, "B", p, 2), -1);
}
END_TEST

/* Every prefix of a valid body is refused or parsed, never read past its end (ASan). */
START_TEST(test_parse_every_prefix)
{
	struct mp_part p[4];
	size_t len = sizeof(two_parts) - 1;
	for (size_t i = 0; i < len; i++) {
		char *copy = malloc(i ? i : 1);
		memcpy(copy, two_parts, i);
		int n = mp_parse(A, copy, i, "XB", p, 4);
		ck_assert(n == -1 || n == 2);
		free(copy);
	}
}
END_TEST

static Suite *mp_suite(void)
{
	Suite *s = suite_create("mp");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_boundary);
	tcase_add_test(tc, test_parse_parts);
	tcase_add_test(tc, test_parse_without_preamble_or_headers);
	tcase_add_test(tc, test_parse_hostile);
	tcase_add_test(tc, test_parse_every_prefix);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mp_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
