/* test-srv.c - unit tests of lib/srv.c: the server's key table (every key named, documented,
 * with a default that loads and bounds that hold it) and the cross-field rules of
 * srv_config_validate (each refusal names the key and the value, CONVENTIONS.md 13). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "sb.h"
#include "srv.h"

static struct srv_config cfg;
static const struct cfg_section sec = {.keys = srv_config_keys, .base = &cfg};
static bool loaded;

/* Loads the defaults plus "key=value" flags into cfg. */
static void load(const char *const *flags, size_t n)
{
	char err[256];
	if (loaded)
		cfg_free(&sec, 1);
	memset(&cfg, 0, sizeof(cfg));
	int rc = cfg_load(&sec, 1, NULL, false, (char *const *)flags, n, err, sizeof(err));
	ck_assert_msg(rc == 0, "cfg_load: %s", err);
	loaded = true;
}

#define LOAD(...)                                              \
	do {                                                   \
		static const char *const f_[] = {__VA_ARGS__}; \
		load(f_, sizeof(f_) / sizeof(f_[0]));          \
	} while (0)

/* srv_config_validate refuses cfg with a message naming key and containing value. */
static void refused(const char *key, const char *value)
{
	char err[512] = "";
	ck_assert_int_eq(srv_config_validate(&cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, key) != NULL, "'%s' does not name %s", err, key);
	ck_assert_msg(strstr(err, value) != NULL, "'%s' does not show %s", err, value);
}

static void accepted(void)
{
	char err[512] = "";
	ck_assert_msg(srv_config_validate(&cfg, err, sizeof(err)) == 0, "refused: %s", err);
}

static void teardown(void)
{
	if (loaded)
		cfg_free(&sec, 1);
	loaded = false;
}

START_TEST(test_key_table)
{
	size_t n = 0;
	for (const struct cfg_key *k = srv_config_keys; k->name; k++, n++) {
		ck_assert_msg(k->help && *k->help, "%s: no help", k->name);
		ck_assert_msg(k->type < CFG__MAX, "%s: type", k->name);
		ck_assert_msg(k->off < sizeof(struct srv_config), "%s: offset", k->name);
		for (const char *c = k->name; *c; c++)
			ck_assert_msg((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
					      *c == '_',
				      "%s: not lower_snake_case", k->name);
		for (const struct cfg_key *j = srv_config_keys; j < k; j++)
			ck_assert_msg(strcmp(j->name, k->name) != 0, "%s twice", k->name);
		if (k->type == CFG_INT)
			ck_assert_msg(k->min <= k->max, "%s: min > max", k->name);
		if (k->type == CFG_ENUM)
			ck_assert_msg(k->enums && k->enums[0], "%s: no values", k->name);
		ck_assert(cfg_known(&sec, 1, k->name));
	}
	ck_assert_uint_gt(n, 30);
	ck_assert(!cfg_known(&sec, 1, "no_such_key"));
}
END_TEST

START_TEST(test_defaults_load_and_validate)
{
	load(NULL, 0);
	accepted();
	/* every CFG_INT default lies within its own bounds */
	for (const struct cfg_key *k = srv_config_keys; k->name; k++) {
		if (k->type != CFG_INT)
			continue;
		int64_t v = *(const int64_t *)((const char *)&cfg + k->off);
		ck_assert_msg(v >= k->min && v <= k->max, "%s: default %lld out of bounds", k->name,
			      (long long)v);
	}
	ck_assert_int_eq(cfg.pm, PM_STATIC);
	ck_assert_int_eq(cfg.socket_mode, 0660); /* octal */
	ck_assert_str_eq(cfg.listen, "");
}
END_TEST

/* A load of flags that must fail, naming key; what the partial load allocated is freed. */
static void load_fails(const char *flag, const char *key)
{
	char err[256] = "";
	char *const f[] = {(char *)flag};
	if (loaded)
		cfg_free(&sec, 1);
	memset(&cfg, 0, sizeof(cfg));
	int rc = cfg_load(&sec, 1, NULL, false, f, 1, err, sizeof(err));
	cfg_free(&sec, 1);
	loaded = false;
	ck_assert_msg(rc == -1, "%s accepted", flag);
	ck_assert_msg(strstr(err, key) != NULL, "'%s' does not name %s", err, key);
}

START_TEST(test_bounds_are_enforced_by_the_table)
{
	load_fails("threads=65", "threads");
	load_fails("threads=0", "threads");
	load_fails("pm=sometimes", "pm");
	load_fails("workers_max=257", "workers_max");
	load_fails("socket_mode=0999", "socket_mode");
}
END_TEST

START_TEST(test_dynamic_keeps_a_worker)
{
	LOAD("pm=dynamic", "workers_min=0");
	refused("workers_min", "0");
	LOAD("pm=ondemand", "workers_min=0"); /* ondemand may scale to 0 */
	accepted();
	LOAD("pm=dynamic", "workers=1", "workers_min=2");
	refused("'workers'", "1");
	LOAD("pm=static", "workers=1", "workers_min=2"); /* only dynamic starts from workers */
	accepted();
}
END_TEST

START_TEST(test_workers_max_bounds_the_others)
{
	LOAD("workers=9", "workers_max=8");
	refused("workers", "9");
	LOAD("workers=2", "workers_min=5", "workers_max=4");
	refused("workers_min", "5");
	LOAD("workers=8", "workers_min=8", "workers_max=8");
	accepted();
}
END_TEST

START_TEST(test_threads_fit_the_scoreboard)
{
	load(NULL, 0);
	cfg.threads = SB_MAX_THREADS;
	accepted();
	cfg.threads = SB_MAX_THREADS + 1;
	refused("threads", "65");
}
END_TEST

START_TEST(test_spare_threads)
{
	LOAD("pm_min_spare_threads=8", "pm_max_spare_threads=4");
	refused("pm_max_spare_threads", "4");
	LOAD("pm_min_spare_threads=8", "pm_max_spare_threads=0"); /* 0: threads */
	accepted();
	LOAD("pm_min_spare_threads=4", "pm_max_spare_threads=4");
	accepted();
}
END_TEST

START_TEST(test_addresses)
{
	LOAD("redis_url=http://x");
	refused("redis_url", "http://x");
	LOAD("redis_url=unix:/run/redis.sock");
	accepted();
	LOAD("redis_url="); /* no Redis: the kit's default */
	accepted();
	LOAD("listen=localhost");
	refused("'listen'", "localhost");
	LOAD("ops_listen=ops");
	refused("ops_listen", "ops");
	LOAD("listen=unix:/run/api.sock", "ops_listen=127.0.0.1:9001");
	accepted();
	LOAD("listen=[::1]:9000");
	accepted();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("srv");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_key_table);
	tcase_add_test(tc, test_defaults_load_and_validate);
	tcase_add_test(tc, test_bounds_are_enforced_by_the_table);
	tcase_add_test(tc, test_dynamic_keeps_a_worker);
	tcase_add_test(tc, test_workers_max_bounds_the_others);
	tcase_add_test(tc, test_threads_fit_the_scoreboard);
	tcase_add_test(tc, test_spare_threads);
	tcase_add_test(tc, test_addresses);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
