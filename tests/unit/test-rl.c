/* test-rl.c - unit tests of lib/rl.c: the per-worker GCRA table (burst, steady rate, peeks,
 * retry-after, independence of keys, eviction when full, threads), the reply parser and the
 * command builder. The Redis script itself is exercised by tests/api/test_ratelimit.py. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rl.h"

static const struct rl_limit five_per_900s = {5, 900000};

START_TEST(test_burst_then_refused)
{
	struct rl_local *t = rl_local_new(1024);
	struct rl_result r;
	for (int i = 0; i < 5; i++) {
		rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
		ck_assert_msg(r.allowed, "request %d", i);
		ck_assert_int_eq(r.remaining, 4 - i);
		ck_assert(r.local);
		ck_assert_int_eq(r.limit, 5);
	}
	rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.remaining, 0);
	/* one request drains every 180 s */
	ck_assert_int_eq(r.retry_after_s, 180);
	ck_assert_int_eq(r.reset_s, 900);
	rl_local_free(t);
}
END_TEST

START_TEST(test_leaks_at_the_rate)
{
	struct rl_local *t = rl_local_new(1024);
	struct rl_result r;
	for (int i = 0; i < 5; i++)
		rl_local_check(t, "k", &five_per_900s, 1, 0, &r);
	rl_local_check(t, "k", &five_per_900s, 1, 179999, &r);
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.retry_after_s, 1);
	rl_local_check(t, "k", &five_per_900s, 1, 180000, &r);
	ck_assert(r.allowed);
	rl_local_check(t, "k", &five_per_900s, 1, 180000, &r);
	ck_assert(!r.allowed);
	/* after a full period everything is available again */
	rl_local_check(t, "k", &five_per_900s, 0, 180000 + 900000, &r);
	ck_assert(r.allowed);
	ck_assert_int_eq(r.remaining, 5);
	rl_local_free(t);
}
END_TEST

START_TEST(test_peek_does_not_spend)
{
	struct rl_local *t = rl_local_new(1024);
	struct rl_result r;
	for (int i = 0; i < 100; i++) {
		rl_local_check(t, "k", &five_per_900s, 0, 5, &r);
		ck_assert(r.allowed);
		ck_assert_int_eq(r.remaining, 5);
	}
	for (int i = 0; i < 5; i++)
		rl_local_check(t, "k", &five_per_900s, 1, 5, &r);
	rl_local_check(t, "k", &five_per_900s, 0, 5, &r);
	ck_assert(!r.allowed);
	ck_assert_int_ge(r.retry_after_s, 1);
	rl_local_free(t);
}
END_TEST

START_TEST(test_keys_are_independent)
{
	struct rl_local *t = rl_local_new(1024);
	struct rl_result r;
	for (int i = 0; i < 5; i++)
		rl_local_check(t, "a", &five_per_900s, 1, 0, &r);
	rl_local_check(t, "a", &five_per_900s, 1, 0, &r);
	ck_assert(!r.allowed);
	rl_local_check(t, "b", &five_per_900s, 1, 0, &r);
	ck_assert(r.allowed);
	ck_assert_int_eq(r.remaining, 4);
	rl_local_free(t);
}
END_TEST

START_TEST(test_per_minute)
{
	struct rl_limit ten = {10, 60000};
	struct rl_local *t = rl_local_new(1024);
	struct rl_result r;
	int ok = 0;
	for (int i = 0; i < 50; i++) {
		rl_local_check(t, "user", &ten, 1, 1000, &r);
		ok += r.allowed;
	}
	ck_assert_int_eq(ok, 10);
	ck_assert_int_eq(r.retry_after_s, 6);
	/* one request a second for a minute: the burst of 10 plus one per 6 s drained over the
	 * 59 s between the first and the last request */
	ok = 0;
	for (int s = 0; s < 60; s++) {
		rl_local_check(t, "user2", &ten, 1, 1000 + s * 1000, &r);
		ok += r.allowed;
	}
	ck_assert_int_eq(ok, 10 + 59 / 6);
	rl_local_free(t);
}
END_TEST

START_TEST(test_full_table_never_unlimited_for_hot_key)
{
	/* a tiny table flooded with other keys: the hot key may be evicted only when its bucket
	 * is the emptiest of its set, so a key that is over its limit stays limited */
	struct rl_local *t = rl_local_new(64);
	struct rl_result r;
	for (int i = 0; i < 5; i++)
		rl_local_check(t, "hot", &five_per_900s, 1, 0, &r);
	char k[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(k, sizeof(k), "cold-%d", i);
		rl_local_check(t, k, &five_per_900s, 1, 0, &r);
	}
	rl_local_check(t, "hot", &five_per_900s, 1, 0, &r);
	ck_assert(!r.allowed);
	rl_local_free(t);
}
END_TEST

START_TEST(test_high_limits_keep_their_precision)
{
	/* 10 million a minute is an interval of 6 us: rounding each request up to a whole ms
	 * would make it 60000 a minute */
	struct rl_limit big = {10000000, 60000};
	struct rl_local *t = rl_local_new(64);
	struct rl_result r;
	int ok = 0;
	for (int i = 0; i < 200000; i++) {
		rl_local_check(t, "hot", &big, 1, 1000 + i / 1000, &r);
		ok += r.allowed;
	}
	ck_assert_int_eq(ok, 200000);
	rl_local_free(t);
}
END_TEST

struct thr {
	struct rl_local *t;
	int allowed;
};

static void *hammer(void *arg)
{
	struct thr *x = arg;
	struct rl_limit lim = {100, 60000};
	struct rl_result r;
	for (int i = 0; i < 1000; i++) {
		rl_local_check(x->t, "shared", &lim, 1, 10, &r);
		x->allowed += r.allowed;
	}
	return NULL;
}

START_TEST(test_threads_share_exactly)
{
	struct rl_local *t = rl_local_new(1024);
	struct thr x[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		x[i].t = t;
		x[i].allowed = 0;
		pthread_create(&th[i], NULL, hammer, &x[i]);
	}
	int total = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		total += x[i].allowed;
	}
	ck_assert_int_eq(total, 100);
	rl_local_free(t);
}
END_TEST

/* A fake reply of the script. */
static redisReply *reply4(long long a, long long b, long long c, long long d)
{
	redisReply *x = calloc(1, sizeof(*x));
	x->type = REDIS_REPLY_ARRAY;
	x->elements = 4;
	x->element = calloc(4, sizeof(redisReply *));
	long long v[4] = {a, b, c, d};
	for (int i = 0; i < 4; i++) {
		x->element[i] = calloc(1, sizeof(redisReply));
		x->element[i]->type = REDIS_REPLY_INTEGER;
		x->element[i]->integer = v[i];
	}
	return x;
}

static void free4(redisReply *x)
{
	for (int i = 0; i < 4; i++)
		free(x->element[i]);
	free(x->element);
	free(x);
}

START_TEST(test_parse)
{
	struct rl_result r;
	redisReply *x = reply4(1, 3, 0, 360000);
	ck_assert_int_eq(rl_parse(x, &five_per_900s, &r), 0);
	ck_assert(r.allowed);
	ck_assert_int_eq(r.remaining, 3);
	ck_assert_int_eq(r.reset_s, 360);
	ck_assert(!r.local);
	free4(x);
	x = reply4(0, 0, 1500, 900000);
	ck_assert_int_eq(rl_parse(x, &five_per_900s, &r), 0);
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.retry_after_s, 2);
	ck_assert_int_eq(r.limit, 5);
	free4(x);
	/* an error reply or garbage is refused, so the caller falls back */
	redisReply e = {.type = REDIS_REPLY_ERROR, .str = "OOM", .len = 3};
	ck_assert_int_eq(rl_parse(&e, &five_per_900s, &r), -1);
	ck_assert_int_eq(rl_parse(NULL, &five_per_900s, &r), -1);
	x = reply4(1, 2, 3, 4);
	x->element[2]->type = REDIS_REPLY_STRING;
	ck_assert_int_eq(rl_parse(x, &five_per_900s, &r), -1);
	free4(x);
}
END_TEST

START_TEST(test_cmd_shape)
{
	struct rl_cmd c;
	rl_cmd(&c, "rl:lf:1.2.3.4:a@b.c", &five_per_900s, 0);
	ck_assert_int_eq(c.a.argc, 7);
	ck_assert_str_eq(c.a.argv[0], "EVALSHA");
	ck_assert_uint_eq(strlen(c.a.argv[1]), 40);
	ck_assert_uint_eq(strspn(c.a.argv[1], "0123456789abcdef"), 40);
	ck_assert_ptr_nonnull(c.a.script);
	ck_assert_ptr_nonnull(strstr(c.a.script->body, "redis.call('TIME')"));
	ck_assert_str_eq(c.a.argv[2], "1");
	ck_assert_str_eq(c.a.argv[3], "rl:lf:1.2.3.4:a@b.c");
	ck_assert_str_eq(c.a.argv[4], "5");
	ck_assert_str_eq(c.a.argv[5], "900000");
	ck_assert_str_eq(c.a.argv[6], "0");
	for (int i = 0; i < c.a.argc; i++)
		ck_assert_uint_eq(c.a.lens[i], strlen(c.a.argv[i]));
}
END_TEST

START_TEST(test_negative_cost_gives_back)
{
	struct rl_local *t = rl_local_new(1024);
	struct rl_result r;
	for (int i = 0; i < 5; i++)
		rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
	rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
	ck_assert(!r.allowed);
	/* two attempts succeeded after all: their units come back */
	rl_local_check(t, "k", &five_per_900s, -1, 1000, &r);
	ck_assert(r.allowed);
	rl_local_check(t, "k", &five_per_900s, -1, 1000, &r);
	ck_assert_int_eq(r.remaining, 2);
	rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
	ck_assert(r.allowed);
	rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
	ck_assert(r.allowed);
	rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
	ck_assert(!r.allowed);
	/* never below an empty bucket: ten give-backs leave exactly the burst */
	for (int i = 0; i < 10; i++)
		rl_local_check(t, "k", &five_per_900s, -1, 1000, &r);
	for (int i = 0; i < 5; i++) {
		rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
		ck_assert_msg(r.allowed, "request %d", i);
	}
	rl_local_check(t, "k", &five_per_900s, 1, 1000, &r);
	ck_assert(!r.allowed);
	rl_local_free(t);
}
END_TEST

/* The shared table: children forked after it is made spend one budget between them. */
START_TEST(test_shared_table_across_processes)
{
	struct rl_local *t = rl_local_new_shared(1024);
	ck_assert_ptr_nonnull(t);
	enum { KIDS = 4, EACH = 5 };
	for (int k = 0; k < KIDS; k++) {
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			int ok = 0;
			struct rl_result r;
			for (int i = 0; i < EACH; i++) {
				rl_local_check(t, "login", &five_per_900s, 1, 1000, &r);
				ok += r.allowed;
			}
			_exit(ok);
		}
	}
	int allowed = 0;
	for (int k = 0; k < KIDS; k++) {
		int st = 0;
		ck_assert_int_gt(wait(&st), 0);
		ck_assert(WIFEXITED(st));
		allowed += WEXITSTATUS(st);
	}
	/* 20 attempts in 4 processes, one limit of 5 */
	ck_assert_int_eq(allowed, 5);
	rl_local_free(t);
}
END_TEST

static Suite *rl_suite(void)
{
	Suite *s = suite_create("rl");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_burst_then_refused);
	tcase_add_test(tc, test_leaks_at_the_rate);
	tcase_add_test(tc, test_peek_does_not_spend);
	tcase_add_test(tc, test_keys_are_independent);
	tcase_add_test(tc, test_per_minute);
	tcase_add_test(tc, test_full_table_never_unlimited_for_hot_key);
	tcase_add_test(tc, test_high_limits_keep_their_precision);
	tcase_add_test(tc, test_threads_share_exactly);
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_cmd_shape);
	tcase_add_test(tc, test_negative_cost_gives_back);
	tcase_add_test(tc, test_shared_table_across_processes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rl_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
