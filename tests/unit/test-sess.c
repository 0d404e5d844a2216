/* test-sess.c - unit tests of lib/sess.c without a Redis: the check's commands and the
 * decisions taken from its reply (hit, miss, incomplete stamp, cached data, hostile replies).
 * The scripts themselves run against a real Redis in tests/api/test_auth_sessions.py. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sess.h"

/* A fake MGET reply: NULL strings become nil elements. */
static redisReply *mget(const char *e, const char *u, const char *g, const char *d)
{
	const char *v[4] = {e, u, g, d};
	redisReply *x = calloc(1, sizeof(*x));
	x->type = REDIS_REPLY_ARRAY;
	x->elements = 4;
	x->element = calloc(4, sizeof(redisReply *));
	for (int i = 0; i < 4; i++) {
		redisReply *el = calloc(1, sizeof(*el));
		if (v[i]) {
			el->type = REDIS_REPLY_STRING;
			el->str = strdup(v[i]);
			el->len = strlen(v[i]);
		} else {
			el->type = REDIS_REPLY_NIL;
		}
		x->element[i] = el;
	}
	return x;
}

static void put(redisReply *x)
{
	for (size_t i = 0; i < x->elements; i++) {
		free(x->element[i]->str);
		free(x->element[i]);
	}
	free(x->element);
	free(x);
}

START_TEST(test_hit_with_data)
{
	struct sess_stamp st;
	const char *d;
	size_t n;
	redisReply *x = mget("g1:r1", "r1", "g1", "g1:r1:{\"id\":1}");
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_HIT);
	ck_assert_str_eq(st.gen, "g1");
	ck_assert_str_eq(st.rev, "r1");
	ck_assert_uint_eq(n, 8);
	ck_assert(memcmp(d, "{\"id\":1}", 8) == 0);
	put(x);
}
END_TEST

START_TEST(test_stale_entry_is_a_miss)
{
	struct sess_stamp st;
	const char *d;
	size_t n;
	/* revoked: the marker moved on */
	redisReply *x = mget("g1:r1", "r2", "g1", "g1:r1:{}");
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_MISS);
	ck_assert_str_eq(st.rev, "r2");
	ck_assert_ptr_null(d); /* the data of the old stamp is stale too */
	put(x);
	/* a new generation after an outage */
	x = mget("g1:r1", "r1", "g2", NULL);
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_MISS);
	ck_assert_str_eq(st.gen, "g2");
	put(x);
	/* no entry (evicted or never cached) */
	x = mget(NULL, "r1", "g1", NULL);
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_MISS);
	ck_assert_str_eq(st.gen, "g1");
	put(x);
	/* an entry that only starts like the stamp */
	x = mget("g1:r1x", "r1", "g1", "g1:r1x:{}");
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_MISS);
	ck_assert_ptr_null(d);
	put(x);
}
END_TEST

START_TEST(test_missing_marker_or_generation_never_hits)
{
	struct sess_stamp st;
	const char *d;
	size_t n;
	/* evicted marker: whatever the entry says, it is a miss with an empty stamp */
	redisReply *x = mget("g1:", NULL, "g1", "g1::{}");
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_MISS);
	ck_assert_str_eq(st.gen, "");
	ck_assert_str_eq(st.rev, "");
	ck_assert_ptr_null(d);
	put(x);
	x = mget(":r1", "r1", NULL, ":r1:{}");
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_MISS);
	ck_assert_str_eq(st.gen, "");
	put(x);
	x = mget(NULL, NULL, NULL, NULL);
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_MISS);
	put(x);
}
END_TEST

START_TEST(test_hit_without_data)
{
	struct sess_stamp st;
	const char *d = "x";
	size_t n = 9;
	redisReply *x = mget("g:r", "r", "g", NULL);
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_HIT);
	ck_assert_ptr_null(d);
	ck_assert_uint_eq(n, 0);
	put(x);
	/* data of another stamp is ignored, the session still hits */
	x = mget("g:r", "r", "g", "g:q:{}");
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_HIT);
	ck_assert_ptr_null(d);
	put(x);
}
END_TEST

START_TEST(test_bad_replies)
{
	struct sess_stamp st;
	const char *d;
	size_t n;
	ck_assert_int_eq(sess_check_parse(NULL, &st, &d, &n), SESS_BAD);
	redisReply e = {.type = REDIS_REPLY_ERROR, .str = "OOM command not allowed", .len = 23};
	ck_assert_int_eq(sess_check_parse(&e, &st, &d, &n), SESS_BAD);
	redisReply *x = mget("a", "b", "c", "d");
	x->elements = 3;
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_BAD);
	x->elements = 4;
	put(x);
	/* an over-long marker cannot be a stamp: miss, never a hit */
	char big[200];
	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	x = mget("g:rrrr", big, "g", NULL);
	ck_assert_int_eq(sess_check_parse(x, &st, &d, &n), SESS_MISS);
	put(x);
}
END_TEST

START_TEST(test_check_commands)
{
	struct sess_cmd c;
	sess_check_cmd(&c, "11111111-1111-4111-8111-111111111111",
		       "22222222-2222-4222-8222-222222222222", 100);
	ck_assert_int_eq(c.a[0].argc, 5);
	ck_assert_str_eq(c.a[0].argv[0], "MGET");
	ck_assert_str_eq(c.a[0].argv[1], "sess:11111111-1111-4111-8111-111111111111");
	ck_assert_str_eq(c.a[0].argv[2], "urev:22222222-2222-4222-8222-222222222222");
	ck_assert_str_eq(c.a[0].argv[3], "sess:gen");
	ck_assert_str_eq(c.a[0].argv[4], "pdata:22222222-2222-4222-8222-222222222222");
	ck_assert_int_eq(c.a[1].argc, 3);
	ck_assert_str_eq(c.a[1].argv[0], "PEXPIRE");
	ck_assert_str_eq(c.a[1].argv[1], "sess:gen");
	ck_assert_str_eq(c.a[1].argv[2], "100");
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < c.a[k].argc; i++)
			ck_assert_uint_eq(c.a[k].lens[i], strlen(c.a[k].argv[i]));
	/* hostile ids check keys that never hold anything */
	sess_check_cmd(&c, "a b", "x\r\ny", 100);
	ck_assert_str_eq(c.a[0].argv[1], "sess:-");
	ck_assert_str_eq(c.a[0].argv[2], "urev:-");
}
END_TEST

START_TEST(test_random_values_differ)
{
	char a[17], b[17];
	sess_random_hex(a);
	sess_random_hex(b);
	ck_assert_uint_eq(strlen(a), 16);
	ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 16);
	ck_assert_str_ne(a, b);
}
END_TEST

static Suite *sess_suite(void)
{
	Suite *s = suite_create("sess");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_hit_with_data);
	tcase_add_test(tc, test_stale_entry_is_a_miss);
	tcase_add_test(tc, test_missing_marker_or_generation_never_hits);
	tcase_add_test(tc, test_hit_without_data);
	tcase_add_test(tc, test_bad_replies);
	tcase_add_test(tc, test_check_commands);
	tcase_add_test(tc, test_random_values_differ);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sess_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
