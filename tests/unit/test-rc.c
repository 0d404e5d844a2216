/* test-rc.c - unit tests of lib/rc.c: the one result vocabulary and its one mapping to HTTP
 * (CONVENTIONS.md 5). Every code has a name and a status; unknown codes map to 500. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "rc.h"

START_TEST(test_every_code_has_a_name)
{
	for (int i = 0; i < RC__MAX; i++) {
		const char *s = rc_str((enum rc)i);
		ck_assert_ptr_nonnull(s);
		ck_assert_msg(strncmp(s, "RC_", 3) == 0 && strlen(s) > 3, "code %d: '%s'", i, s);
		ck_assert_str_ne(s, "RC_UNKNOWN");
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(s, rc_str((enum rc)j)); /* names are unique */
	}
	ck_assert_str_eq(rc_str(RC_OK), "RC_OK");
	ck_assert_str_eq(rc_str(RC_NOTFOUND), "RC_NOTFOUND");
	ck_assert_str_eq(rc_str(RC_UNAVAILABLE), "RC_UNAVAILABLE");
}
END_TEST

START_TEST(test_every_code_has_a_status)
{
	for (int i = 0; i < RC__MAX; i++) {
		int st = rc_http_status((enum rc)i);
		ck_assert_msg(st >= 200 && st <= 599, "code %s: status %d", rc_str((enum rc)i), st);
		/* and a reason phrase of its own, not the fallback */
		ck_assert_ptr_nonnull(http_reason(st));
		ck_assert_str_ne(http_reason(st), "Unknown");
	}
	static const struct {
		enum rc rc;
		int status;
	} want[] = {
		{RC_OK, 200},       {RC_CREATED, 201},   {RC_ACCEPTED, 202}, {RC_BADREQ, 400},
		{RC_UNAUTH, 401},   {RC_FORBIDDEN, 403}, {RC_NOTFOUND, 404}, {RC_METHOD, 405},
		{RC_CONFLICT, 409}, {RC_GONE, 410},      {RC_TOOLARGE, 413}, {RC_MEDIA, 415},
		{RC_INVALID, 422},  {RC_RATELIMIT, 429}, {RC_INTERNAL, 500}, {RC_UNAVAILABLE, 503},
	};
	ck_assert_int_eq(sizeof(want) / sizeof(want[0]), RC__MAX); /* a new code needs a row */
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_int_eq(rc_http_status(want[i].rc), want[i].status);
	/* errors are errors: only the success codes map to 2xx */
	for (int i = RC_BADREQ; i < RC__MAX; i++)
		ck_assert_int_ge(rc_http_status((enum rc)i), 400);
}
END_TEST

START_TEST(test_unknown_codes)
{
	ck_assert_int_eq(rc_http_status(RC__MAX), 500);
	ck_assert_int_eq(rc_http_status((enum rc)(RC__MAX + 7)), 500);
	ck_assert_int_eq(rc_http_status((enum rc) - 1), 500);
	ck_assert_str_eq(rc_str(RC__MAX), "RC_UNKNOWN");
	ck_assert_str_eq(rc_str((enum rc) - 1), "RC_UNKNOWN");
}
END_TEST

START_TEST(test_reason_phrases)
{
	ck_assert_str_eq(http_reason(200), "OK");
	ck_assert_str_eq(http_reason(404), "Not Found");
	ck_assert_str_eq(http_reason(429), "Too Many Requests");
	ck_assert_str_eq(http_reason(503), "Service Unavailable");
	ck_assert_ptr_nonnull(http_reason(299)); /* never NULL, whatever the status */
	ck_assert_ptr_nonnull(http_reason(-1));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rc");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_every_code_has_a_name);
	tcase_add_test(tc, test_every_code_has_a_status);
	tcase_add_test(tc, test_unknown_codes);
	tcase_add_test(tc, test_reason_phrases);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
