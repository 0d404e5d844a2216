/* test-sb.c - unit tests of lib/sb.c: slot life cycle, recording by route/status/latency,
 * and the fold of a reaped worker's counters into the retired totals (the machine's counters
 * never go backwards when workers are recycled or scaled down). */
#include <check.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sb.h"

static uint64_t route_status(const struct sb_totals *t, int route, int cls)
{
	return t->c[SBC_ROUTE(route) + SBR_STATUS(cls)];
}

START_TEST(test_classes_and_buckets)
{
	ck_assert_int_eq(sb_status_class(200), 1);
	ck_assert_int_eq(sb_status_class(204), 1);
	ck_assert_int_eq(sb_status_class(302), 2);
	ck_assert_int_eq(sb_status_class(404), 3);
	ck_assert_int_eq(sb_status_class(429), 3);
	ck_assert_int_eq(sb_status_class(503), 4);
	ck_assert_int_eq(sb_status_class(101), 0);
	ck_assert_int_eq(sb_status_class(0), 4); /* no status: counted as a server failure */
	ck_assert_int_eq(sb_status_class(999), 4);
	ck_assert_int_eq(sb_bucket(0), 0);
	ck_assert_int_eq(sb_bucket(1000), 0); /* bounds are inclusive (le) */
	ck_assert_int_eq(sb_bucket(1001), 1);
	ck_assert_int_eq(sb_bucket(100000), 6); /* le=0.1 */
	ck_assert_int_eq(sb_bucket(10000000), SB_BUCKETS - 2);
	ck_assert_int_eq(sb_bucket(10000001), SB_BUCKETS - 1); /* +Inf */
	for (int i = 1; i < SB_BUCKETS - 1; i++)
		ck_assert_int_gt(sb_bucket_le_us[i], sb_bucket_le_us[i - 1]);
}
END_TEST

START_TEST(test_create_is_free)
{
	struct sb *sb = sb_create(4);
	ck_assert_ptr_nonnull(sb);
	ck_assert_int_eq(sb->max_workers, 4);
	ck_assert_int_eq(sb_free_slot(sb), 0);
	sb_claim(sb, 0, 3, 7);
	ck_assert_int_eq(atomic_load(&sb->workers[0].state), SBW_STARTING);
	ck_assert_int_eq(atomic_load(&sb->workers[0].generation), 7);
	ck_assert_int_eq(sb_free_slot(sb), 1);
	int busy, total;
	sb_busy(sb, -1, &busy, &total);
	ck_assert_int_eq(busy, 0);
	ck_assert_int_eq(total, 3);
	atomic_store(&sb->workers[0].threads[1].state, SBT_BUSY);
	sb_busy(sb, 7, &busy, &total);
	ck_assert_int_eq(busy, 1);
	ck_assert_int_eq(total, 3);
	sb_busy(sb, 8, &busy, &total); /* another generation: not counted */
	ck_assert_int_eq(total, 0);
	ck_assert_ptr_null(sb_create(0));
	sb_destroy(sb);
	sb_destroy(NULL);
}
END_TEST

START_TEST(test_record_and_snapshot)
{
	struct sb *sb = sb_create(2);
	sb_claim(sb, 0, 2, 0);
	sb_claim(sb, 1, 2, 0);
	sb_record(&sb->workers[0], 3, 200, 500);
	sb_record(&sb->workers[0], 3, 201, 3000);
	sb_record(&sb->workers[1], 3, 404, 20000000);
	sb_record(&sb->workers[1], -1, 404, 100);
	sb_record(&sb->workers[1], 9999, 405, 100); /* out of range: the unmatched row */
	sb_record(&sb->workers[1], 5, 429, 100);
	struct sb_totals *t = malloc(sizeof(*t));
	sb_snapshot(sb, t);
	ck_assert_uint_eq(t->c[SBC_REQUESTS], 6);
	ck_assert_uint_eq(t->c[SBC_RATE_LIMITED], 1);
	ck_assert_uint_eq(route_status(t, 3, 1), 2);
	ck_assert_uint_eq(route_status(t, 3, 3), 1);
	ck_assert_uint_eq(route_status(t, SB_ROUTE_NONE, 3), 2);
	ck_assert_uint_eq(t->c[SBC_ROUTE(3) + SBR_BUCKET(0)], 1);
	ck_assert_uint_eq(t->c[SBC_ROUTE(3) + SBR_BUCKET(2)], 1);
	ck_assert_uint_eq(t->c[SBC_ROUTE(3) + SBR_BUCKET(SB_BUCKETS - 1)], 1);
	ck_assert_uint_eq(t->c[SBC_ROUTE(3) + SBR_SUM_US], 500 + 3000 + 20000000);
	free(t);
	sb_destroy(sb);
}
END_TEST

START_TEST(test_retire_keeps_totals)
{
	struct sb *sb = sb_create(2);
	struct sb_totals *t = malloc(sizeof(*t));
	uint64_t last = 0;
	/* recycle the same slot many times: the totals only ever grow, by exactly what was
	 * recorded, and a reused slot starts from zero */
	for (int gen = 0; gen < 10; gen++) {
		sb_claim(sb, 0, 1, gen);
		sb_snapshot(sb, t);
		ck_assert_uint_eq(t->c[SBC_REQUESTS], last);
		for (int k = 0; k <= gen; k++)
			sb_record(&sb->workers[0], 1, 200, 10);
		atomic_store(&sb->workers[0].c[SBC_DB_WAITS], 2); /* a sampled counter */
		sb_snapshot(sb, t);
		ck_assert_uint_eq(t->c[SBC_REQUESTS], last + (uint64_t)gen + 1);
		sb_retire(sb, 0);
		ck_assert_int_eq(atomic_load(&sb->workers[0].state), SBW_FREE);
		sb_snapshot(sb, t);
		last += (uint64_t)gen + 1;
		ck_assert_uint_eq(t->c[SBC_REQUESTS], last);
		ck_assert_uint_eq(route_status(t, 1, 1), last);
		ck_assert_uint_eq(t->c[SBC_DB_WAITS], 2 * ((uint64_t)gen + 1));
	}
	ck_assert_uint_eq(last, 55);
	free(t);
	sb_destroy(sb);
}
END_TEST

START_TEST(test_shared_across_fork)
{
	struct sb *sb = sb_create(1);
	sb_claim(sb, 0, 1, 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sb_set_pid(sb, 0, getpid());
		for (int i = 0; i < 1000; i++)
			sb_record(&sb->workers[0], 2, 200, 1500);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	ck_assert_int_eq(atomic_load(&sb->workers[0].pid), pid);
	sb_retire(sb, 0);
	struct sb_totals *t = malloc(sizeof(*t));
	sb_snapshot(sb, t);
	ck_assert_uint_eq(t->c[SBC_REQUESTS], 1000);
	ck_assert_uint_eq(t->c[SBC_ROUTE(2) + SBR_BUCKET(1)], 1000);
	free(t);
	sb_destroy(sb);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sb");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_classes_and_buckets);
	tcase_add_test(tc, test_create_is_free);
	tcase_add_test(tc, test_record_and_snapshot);
	tcase_add_test(tc, test_retire_keeps_totals);
	tcase_add_test(tc, test_shared_across_fork);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
