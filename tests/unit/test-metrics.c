/* test-metrics.c - unit tests of lib/metrics.c: the Prometheus text exposition (format 0.0.4)
 * and the status document, rendered from a scoreboard filled by hand: every family present,
 * counters equal to what was recorded, histogram buckets cumulative, the status document's
 * thread and worker figures adding up. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "http.h"
#include "metrics.h"
#include "sb.h"
#include "srv.h"

static int h_dummy(struct req *r)
{
	(void)r;
	return 0;
}

static const struct route routes[] = {
	{HM_GET, "/a", h_dummy, 0, 0, NULL, 0},
	{HM_POST, "/b", h_dummy, 0, 0, NULL, 0},
	{HM_GET, "/say/\"hi\"", h_dummy, 0, 0, NULL, 0}, /* a label value to escape */
	{HM_GET, "/never", h_dummy, 0, 0, NULL, 0},      /* no traffic: no rows */
};
static const struct srv_app app = {
	.name = "test-pool", .version = "9.9.9", .routes = routes, .nroutes = 4};
static const struct metrics_counter_desc counters[] = {
	{"logins", "Logins."}, {NULL, NULL}, {"fallbacks", "Fallbacks."}};
static const struct metrics_opts opts = {.prefix = "t", .app = counters, .napp = 3};

static struct srv_config cfg;
static struct wctx w;
static struct req r;
static struct sb *sb;

/* Two running workers of two threads each (one busy), one stopping; traffic recorded:
 * /a: 3 x 200 (0.5 ms), 1 x 404 (3 ms); /b: 1 x 503 (2 s); /say: 1 x 201; unmatched: 1 x 404;
 * application counter 0 = 5, counter 2 = 7. */
static void setup(void)
{
	sb = sb_create(4);
	ck_assert_ptr_nonnull(sb);
	for (int i = 0; i < 3; i++) {
		sb_claim(sb, i, 2, 1);
		sb_set_pid(sb, i, getpid());
		atomic_store(&sb->workers[i].state, i < 2 ? SBW_RUNNING : SBW_STOPPING);
	}
	atomic_store(&sb->workers[0].threads[1].state, SBT_BUSY);
	atomic_store(&sb->workers[0].threads[1].route, 1);
	atomic_store(&sb->workers[2].threads[0].state, SBT_BUSY); /* stopping: not counted */
	for (int i = 0; i < 3; i++)
		sb_record(&sb->workers[0], 0, 200, 500);
	sb_record(&sb->workers[1], 0, 404, 3000);
	sb_record(&sb->workers[1], 1, 503, 2000000);
	sb_record(&sb->workers[0], 2, 201, 100);
	sb_record(&sb->workers[1], -1, 404, 100);
	atomic_store(&sb->workers[0].c[SBC_APP + 0], 5);
	atomic_store(&sb->workers[1].c[SBC_APP + 2], 7);
	atomic_store(&sb->pm.master_pid, getpid());
	atomic_store(&sb->pm.mode, PM_DYNAMIC);
	atomic_store(&sb->pm.target, 2);
	atomic_store(&sb->pm.workers_min, 1);
	atomic_store(&sb->pm.workers_max, 4);
	atomic_store(&sb->pm.threads, 2);
	atomic_store(&sb->pm.spawned, 3);
	memset(&cfg, 0, sizeof(cfg));
	cfg.ops_listen = "";
	memset(&w, 0, sizeof(w));
	w.cfg = &cfg;
	w.app = &app;
	w.sb = sb;
	memset(&r, 0, sizeof(r));
	r.w = &w;
	r.a = arena_new(4096);
}

static void teardown(void)
{
	arena_free(r.a);
	sb_destroy(sb);
}

static const char *prometheus(void)
{
	struct buf b;
	buf_init(&b, r.a);
	metrics_prometheus(&r, &b, &opts);
	return b.p;
}

/* The value of the sample line that starts with series (name and labels) followed by a
 * space; fails the test when there is none. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	}
	ck_abort_msg("no sample %s", series);
	return -1;
}

START_TEST(test_families_present)
{
	const char *t = prometheus();
	static const char *const families[] = {"http_requests_total counter",
					       "http_request_duration_seconds histogram",
					       "http_responses_total counter",
					       "slow_requests_total counter",
					       "rate_limit_rejections_total counter",
					       "workers gauge",
					       "workers_min gauge",
					       "workers_max gauge",
					       "workers_target gauge",
					       "worker_spawns_total counter",
					       "worker_crashes_total counter",
					       "threads gauge",
					       "threads_busy_average gauge",
					       "db_pool_connections gauge",
					       "db_pool_size gauge",
					       "db_pool_timeouts_total counter",
					       "redis_up gauge",
					       "redis_workers gauge",
					       "redis_failures_total counter",
					       "logins_total counter",
					       "fallbacks_total counter",
					       "resident_memory_bytes gauge",
					       "start_time_seconds gauge",
					       "build_info gauge"};
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		char want[128];
		snprintf(want, sizeof(want), "# TYPE t_%s\n", families[i]);
		ck_assert_msg(strstr(t, want) != NULL, "missing %s", want);
		/* and its HELP line */
		char name[96];
		snprintf(name, sizeof(name), "# HELP t_%.*s ", (int)strcspn(families[i], " "),
			 families[i]);
		ck_assert_msg(strstr(t, name) != NULL, "missing %s", name);
	}
	/* an application counter without a name is not exposed */
	ck_assert_ptr_null(strstr(t, "t__total"));
}
END_TEST

START_TEST(test_counters_equal_what_was_recorded)
{
	const char *t = prometheus();
	ck_assert_double_eq(sample(t, "t_http_requests_total{method=\"GET\",route=\"/a\","
				      "code=\"2xx\"}"),
			    3);
	ck_assert_double_eq(sample(t, "t_http_requests_total{method=\"GET\",route=\"/a\","
				      "code=\"4xx\"}"),
			    1);
	ck_assert_double_eq(sample(t, "t_http_requests_total{method=\"POST\",route=\"/b\","
				      "code=\"5xx\"}"),
			    1);
	/* the 2xx row of a route with traffic is always there, zero or not */
	ck_assert_double_eq(sample(t, "t_http_requests_total{method=\"POST\",route=\"/b\","
				      "code=\"2xx\"}"),
			    0);
	ck_assert_double_eq(sample(t, "t_http_requests_total{method=\"\",route=\"(unmatched)\","
				      "code=\"4xx\"}"),
			    1);
	/* label values escaped */
	ck_assert_double_eq(sample(t, "t_http_requests_total{method=\"GET\","
				      "route=\"/say/\\\"hi\\\"\",code=\"2xx\"}"),
			    1);
	/* a route without traffic has no rows */
	ck_assert_ptr_null(strstr(t, "route=\"/never\""));
	ck_assert_double_eq(sample(t, "t_http_responses_total{code=\"2xx\"}"), 4);
	ck_assert_double_eq(sample(t, "t_http_responses_total{code=\"4xx\"}"), 2);
	ck_assert_double_eq(sample(t, "t_http_responses_total{code=\"5xx\"}"), 1);
	ck_assert_double_eq(sample(t, "t_logins_total"), 5);
	ck_assert_double_eq(sample(t, "t_fallbacks_total"), 7);
	ck_assert_double_eq(sample(t, "t_worker_spawns_total"), 3);
	ck_assert_double_eq(sample(t, "t_workers_target"), 2);
	ck_assert_double_eq(sample(t, "t_workers{state=\"running\"}"), 2);
	ck_assert_double_eq(sample(t, "t_workers{state=\"stopping\"}"), 1);
	/* threads of running workers only: 1 busy of 4 */
	ck_assert_double_eq(sample(t, "t_threads{state=\"busy\"}"), 1);
	ck_assert_double_eq(sample(t, "t_threads{state=\"idle\"}"), 3);
	ck_assert_double_eq(sample(t, "t_build_info{version=\"9.9.9\"}"), 1);
	ck_assert_double_gt(sample(t, "t_resident_memory_bytes"), 0); /* /proc of this process */
}
END_TEST

START_TEST(test_histogram_cumulative)
{
	const char *t = prometheus();
	const char *series =
		"t_http_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",le=";
	double prev = 0;
	int buckets = 0;
	for (const char *p = strstr(t, series); p; p = strstr(p + 1, series)) {
		const char *v = strstr(p, "} ");
		ck_assert_ptr_nonnull(v);
		double x = strtod(v + 2, NULL);
		ck_assert_double_ge(x, prev);
		prev = x;
		buckets++;
	}
	ck_assert_int_eq(buckets, SB_BUCKETS);
	/* 3 requests of 0.5 ms are in the first bucket (le = 0.001) ... */
	ck_assert_double_eq(sample(t, "t_http_request_duration_seconds_bucket{method=\"GET\","
				      "route=\"/a\",le=\"0.001\"}"),
			    3);
	/* ... all 4 in +Inf, which equals _count */
	ck_assert_double_eq(sample(t, "t_http_request_duration_seconds_bucket{method=\"GET\","
				      "route=\"/a\",le=\"+Inf\"}"),
			    4);
	ck_assert_double_eq(sample(t, "t_http_request_duration_seconds_count{method=\"GET\","
				      "route=\"/a\"}"),
			    4);
	/* 3 x 0.0005 + 0.003 */
	ck_assert_double_eq_tol(sample(t, "t_http_request_duration_seconds_sum{method=\"GET\","
					  "route=\"/a\"}"),
				0.0045, 1e-9);
	/* 2 s lands above le = 1 */
	ck_assert_double_eq(sample(t, "t_http_request_duration_seconds_bucket{method=\"POST\","
				      "route=\"/b\",le=\"1\"}"),
			    0);
}
END_TEST

static int64_t jget(json_object *o, const char *path)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", path);
	json_object *cur = o;
	for (char *k = strtok(buf, "."); k; k = strtok(NULL, ".")) {
		json_object *next = NULL;
		ck_assert_msg(json_object_object_get_ex(cur, k, &next), "no %s", path);
		cur = next;
	}
	return json_object_get_int64(cur);
}

START_TEST(test_status_document)
{
	json_object *o = metrics_status(&r, false);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "pool")), "test-pool");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "version")), "9.9.9");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "process_manager")),
			 "dynamic");
	ck_assert_int_eq(jget(o, "accepted_requests"), 7);
	ck_assert_int_eq(jget(o, "responses.2xx"), 4);
	ck_assert_int_eq(jget(o, "responses.4xx"), 2);
	ck_assert_int_eq(jget(o, "responses.5xx"), 1);
	ck_assert_int_eq(jget(o, "workers.running"), 2);
	ck_assert_int_eq(jget(o, "workers.stopping"), 1);
	ck_assert_int_eq(jget(o, "workers.current"), 2);
	ck_assert_int_eq(jget(o, "workers.idle"), 1); /* worker 1 has no busy thread */
	ck_assert_int_eq(jget(o, "workers.target"), 2);
	/* threads sum: busy + idle = total = per worker x running workers */
	ck_assert_int_eq(jget(o, "threads.busy") + jget(o, "threads.idle"),
			 jget(o, "threads.total"));
	ck_assert_int_eq(jget(o, "threads.total"), jget(o, "threads.per_worker") * 2);
	ck_assert_int_eq(jget(o, "threads.busy"), 1);
	ck_assert(!json_object_object_get_ex(o, "processes", NULL)); /* only with full */
	json_object_put(o);
}
END_TEST

START_TEST(test_status_full)
{
	json_object *o = metrics_status(&r, true);
	json_object *procs = NULL;
	ck_assert(json_object_object_get_ex(o, "processes", &procs));
	ck_assert_int_eq(json_object_array_length(procs), 3);
	int64_t busy = 0, requests = 0;
	for (size_t i = 0; i < json_object_array_length(procs); i++) {
		json_object *p = json_object_array_get_idx(procs, i);
		json_object *threads = json_object_object_get(p, "threads");
		ck_assert_int_eq(json_object_array_length(threads), 2);
		const char *state = json_object_get_string(json_object_object_get(p, "state"));
		if (strcmp(state, "stopping") != 0)
			busy += jget(p, "busy_threads");
		requests += jget(p, "requests");
		ck_assert_int_eq(jget(p, "pid"), getpid());
	}
	ck_assert_int_eq(busy, jget(o, "threads.busy"));
	/* the busy thread names its route */
	json_object *th = json_object_array_get_idx(
		json_object_object_get(json_object_array_get_idx(procs, 0), "threads"), 1);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(th, "route")), "POST /b");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(th, "state")), "busy");
	json_object_put(o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_families_present);
	tcase_add_test(tc, test_counters_equal_what_was_recorded);
	tcase_add_test(tc, test_histogram_cumulative);
	tcase_add_test(tc, test_status_document);
	tcase_add_test(tc, test_status_full);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
