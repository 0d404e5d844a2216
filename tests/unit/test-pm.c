/* test-pm.c - unit tests of the scaling policy of lib/pm.c with synthetic time: the seed's
 * HPA shape (scale up above 70 % busy, at most 4 workers per tick; scale down only after the
 * stabilisation window, at most 2 workers per period), bounds, the workers_max warning that
 * fires once and re-arms, and ondemand (no window-driven removal). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "pm.h"
#include "srv.h"

static struct srv_config cfg;

/* Loads the defaults plus "key=value" flags into cfg. */
static void load(const char *const *flags, size_t n)
{
	char err[256];
	static bool loaded;
	struct cfg_section sec = {.keys = srv_config_keys, .base = &cfg};
	if (loaded)
		cfg_free(&sec, 1);
	memset(&cfg, 0, sizeof(cfg));
	int rc = cfg_load(&sec, 1, NULL, false, (char *const *)flags, n, err, sizeof(err));
	ck_assert_msg(rc == 0, "cfg_load: %s", err);
	loaded = true;
}

static void dynamic(void)
{
	static const char *const f[] = {"pm=dynamic", "workers=2", "workers_min=1",
					"workers_max=10", "threads=4"};
	load(f, sizeof(f) / sizeof(f[0]));
}

START_TEST(test_defaults_are_the_seeds)
{
	load(NULL, 0);
	ck_assert_int_eq(cfg.pm_scale_up_busy_pct, 70);
	ck_assert_int_eq(cfg.pm_scale_up_step, 4);
	ck_assert_int_eq(cfg.pm_scale_down_window_s, 300);
	ck_assert_int_eq(cfg.pm_scale_down_step, 2);
	ck_assert_int_eq(cfg.pm_scale_down_period_s, 60);
	char err[256];
	ck_assert_int_eq(srv_config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_validate_modes)
{
	char err[256];
	static const char *const dyn0[] = {"pm=dynamic", "workers_min=0"};
	load(dyn0, 2);
	ck_assert_int_eq(srv_config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "workers_min"));
	static const char *const od0[] = {"pm=ondemand", "workers_min=0"};
	load(od0, 2);
	ck_assert_int_eq(srv_config_validate(&cfg, err, sizeof(err)), 0);
	static const char *const start[] = {"pm=dynamic", "workers=1", "workers_min=2"};
	load(start, 3);
	ck_assert_int_eq(srv_config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "'workers'"));
	static const char *const spare[] = {"pm_min_spare_threads=8", "pm_max_spare_threads=4"};
	load(spare, 2);
	ck_assert_int_eq(srv_config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "pm_max_spare_threads"));
}
END_TEST

START_TEST(test_recommend)
{
	dynamic(); /* 4 threads per worker: 2.8 busy threads per worker at 70 % */
	ck_assert_int_eq(pm_recommend(&cfg, 2, 0, 8), 0);
	ck_assert_int_eq(pm_recommend(&cfg, 2, 2.8, 8), 1); /* exactly 70 %: not above */
	ck_assert_int_eq(pm_recommend(&cfg, 2, 2.9, 8), 2);
	ck_assert_int_eq(pm_recommend(&cfg, 2, 5.6, 8), 2);
	ck_assert_int_eq(pm_recommend(&cfg, 2, 5.7, 8), 3);
	/* saturated: every thread busy, demand unknown -> a full step more */
	ck_assert_int_eq(pm_recommend(&cfg, 2, 8, 8), 6);
	/* min spare threads */
	static const char *const f[] = {"pm=dynamic", "threads=4", "pm_min_spare_threads=6"};
	load(f, 3);
	ck_assert_int_eq(pm_recommend(&cfg, 2, 1, 8), 2); /* (1 + 6) / 4 -> 2 */
	ck_assert_int_eq(pm_recommend(&cfg, 2, 3, 8), 3); /* (3 + 6) / 4 -> 3 */
}
END_TEST

START_TEST(test_scale_up_at_most_step_per_tick)
{
	dynamic();
	struct pm_scaler s;
	struct pm_decision d;
	ck_assert_int_eq(pm_scaler_init(&s, &cfg, 2, 1000), 0);
	pm_scaler_tick(&s, &cfg, 1001, 2, 8, 8, &d); /* saturated */
	ck_assert_int_eq(d.up, 4);
	ck_assert_int_eq(d.down, 0);
	pm_scaler_tick(&s, &cfg, 1002, 6, 24, 24, &d); /* still saturated */
	ck_assert_int_eq(d.up, 4);
	pm_scaler_tick(&s, &cfg, 1003, 10, 40, 40, &d); /* at workers_max */
	ck_assert_int_eq(d.up, 0);
	ck_assert_int_eq(d.rec, 10);
	ck_assert(d.max_hit);
	ck_assert_int_eq(s.max_reached, 1);
	pm_scaler_tick(&s, &cfg, 1004, 10, 40, 40, &d);
	ck_assert(!d.max_hit); /* warned once */
	ck_assert_int_eq(s.max_reached, 1);
	pm_scaler_tick(&s, &cfg, 1005, 10, 20, 40, &d); /* load eases: re-armed */
	ck_assert(!d.max_hit);
	pm_scaler_tick(&s, &cfg, 1006, 10, 40, 40, &d);
	ck_assert(d.max_hit);
	ck_assert_int_eq(s.max_reached, 2);
	pm_scaler_fini(&s);
}
END_TEST

START_TEST(test_scale_down_after_window_two_per_period)
{
	dynamic();
	struct pm_scaler s;
	struct pm_decision d;
	int cur = 10;
	ck_assert_int_eq(pm_scaler_init(&s, &cfg, cur, 0), 0);
	/* busy at 10 workers for a while, then idle from t = 100 */
	for (int t = 1; t < 100; t++) {
		pm_scaler_tick(&s, &cfg, t, cur, 27, 40, &d);
		ck_assert_int_eq(d.down, 0);
		ck_assert_int_eq(d.up, 0);
	}
	int first_down = -1;
	for (int t = 100; t < 1000 && cur > 1; t++) {
		pm_scaler_tick(&s, &cfg, t, cur, 0, cur * 4.0, &d);
		ck_assert_int_le(d.down, 2);
		if (d.down && first_down < 0)
			first_down = t;
		cur -= d.down;
	}
	/* the 300 s window: the first removal once 300 seconds of low recommendations filled it */
	ck_assert_int_eq(first_down, 100 + 300 - 1);
	ck_assert_int_eq(cur, 1); /* never below workers_min */
	pm_scaler_fini(&s);

	/* removals over time: never more than 2 within any 60 s */
	ck_assert_int_eq(pm_scaler_init(&s, &cfg, 10, 0), 0);
	cur = 10;
	int at[16], n = 0;
	for (int t = 1; t < 2000 && cur > 1; t++) {
		pm_scaler_tick(&s, &cfg, t, cur, 0, cur * 4.0, &d);
		for (int k = 0; k < d.down; k++)
			at[n++] = t;
		cur -= d.down;
	}
	ck_assert_int_eq(n, 9);
	for (int i = 2; i < n; i++)
		ck_assert_int_ge(at[i] - at[i - 2], 60);
	pm_scaler_fini(&s);
}
END_TEST

START_TEST(test_no_scale_down_while_load_returns)
{
	dynamic();
	struct pm_scaler s;
	struct pm_decision d;
	ck_assert_int_eq(pm_scaler_init(&s, &cfg, 4, 0), 0);
	/* one busy second per window keeps the size: the window holds the highest recommendation */
	for (int t = 1; t < 2000; t++) {
		double busy = t % 250 == 0 ? 11.0 : 0.0; /* 11 busy of 16 -> 4 workers */
		pm_scaler_tick(&s, &cfg, t, 4, busy, 16, &d);
		ck_assert_int_eq(d.down, 0);
		ck_assert_int_eq(d.up, 0);
	}
	pm_scaler_fini(&s);
}
END_TEST

/* A stalled master (no tick for longer than the window, on a starved machine) cannot shorten
 * the stabilisation window: the seconds it did not see keep the last recommendation, so the
 * first tick after the stall does not remove workers at once. */
START_TEST(test_stall_does_not_shorten_the_window)
{
	static const char *const f[] = {"pm=dynamic",    "workers=4", "workers_min=1",
					"workers_max=4", "threads=2", "pm_scale_down_window_s=4"};
	load(f, sizeof(f) / sizeof(f[0]));
	struct pm_scaler s;
	struct pm_decision d;
	ck_assert_int_eq(pm_scaler_init(&s, &cfg, 4, 0), 0);
	for (int t = 1; t <= 10; t++)
		pm_scaler_tick(&s, &cfg, t, 4, 6, 8, &d); /* 75 % busy: keep 4 */
	/* no tick for 6 s, then idle: the unseen seconds count as busy ones */
	pm_scaler_tick(&s, &cfg, 16, 4, 0, 8, &d);
	ck_assert_int_eq(d.down, 0);
	/* the window of seen idle seconds then passes: removal */
	int first = -1;
	for (int t = 17; t < 30 && first < 0; t++) {
		pm_scaler_tick(&s, &cfg, t, 4, 0, 8, &d);
		if (d.down)
			first = t;
	}
	ck_assert_int_eq(first, 16 + 4 - 1);
	pm_scaler_fini(&s);
}
END_TEST

START_TEST(test_max_spare_guard_and_short_window)
{
	static const char *const f[] = {"pm=dynamic",
					"workers=4",
					"workers_min=1",
					"workers_max=8",
					"threads=2",
					"pm_scale_down_window_s=0",
					"pm_max_spare_threads=5"};
	load(f, sizeof(f) / sizeof(f[0]));
	struct pm_scaler s;
	struct pm_decision d;
	ck_assert_int_eq(pm_scaler_init(&s, &cfg, 4, 0), 0);
	/* 8 threads, 3 busy -> recommendation 3, but only 5 idle: not more than max spare */
	pm_scaler_tick(&s, &cfg, 1, 4, 3, 8, &d);
	ck_assert_int_eq(d.rec, 3);
	ck_assert_int_eq(d.down, 0);
	/* 2 busy -> 6 idle > 5: window 0 means at once */
	pm_scaler_tick(&s, &cfg, 2, 4, 2, 8, &d);
	ck_assert_int_eq(d.down, 2);
	pm_scaler_fini(&s);
}
END_TEST

START_TEST(test_ondemand_never_removes_by_window)
{
	static const char *const f[] = {"pm=ondemand", "workers_min=0", "workers_max=4",
					"threads=2", "pm_scale_down_window_s=0"};
	load(f, sizeof(f) / sizeof(f[0]));
	struct pm_scaler s;
	struct pm_decision d;
	ck_assert_int_eq(pm_scaler_init(&s, &cfg, 0, 0), 0);
	pm_scaler_tick(&s, &cfg, 1, 3, 0, 6, &d);
	ck_assert_int_eq(d.rec, 0);
	ck_assert_int_eq(d.down, 0);
	pm_scaler_tick(&s, &cfg, 2, 1, 2, 2, &d); /* saturated single worker */
	ck_assert_int_eq(d.up, 3);
	pm_scaler_fini(&s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pm");
	TCase *tc = tcase_create("policy");
	tcase_add_test(tc, test_defaults_are_the_seeds);
	tcase_add_test(tc, test_validate_modes);
	tcase_add_test(tc, test_recommend);
	tcase_add_test(tc, test_scale_up_at_most_step_per_tick);
	tcase_add_test(tc, test_scale_down_after_window_two_per_period);
	tcase_add_test(tc, test_no_scale_down_while_load_returns);
	tcase_add_test(tc, test_stall_does_not_shorten_the_window);
	tcase_add_test(tc, test_max_spare_guard_and_short_window);
	tcase_add_test(tc, test_ondemand_never_removes_by_window);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
