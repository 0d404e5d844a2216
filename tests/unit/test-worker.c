/* test-worker.c - unit tests of lib/worker.c without FastCGI: what a request thread does with a
 * route match (serve, 404, 405 with its Allow header), and the ops socket's restriction to
 * internal routes (health, status and metrics answer there while every request thread is
 * busy; nothing else does). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "route.h"
#include "worker.h"

static int h_dummy(struct req *r)
{
	(void)r;
	return 0;
}

static const struct route tbl[] = {
	{HM_GET, "/health", h_dummy, ROUTE_INTERNAL, 0, NULL, 0},
	{HM_GET, "/api/items", h_dummy, 0, 0, NULL, 0},
	{HM_POST, "/api/items", h_dummy, ROUTE_JSON, 0, NULL, 0},
	{HM_DELETE, "/api/items/{id}", h_dummy, 0, 0, NULL, 0},
	{HM_PUT, "/api/items/{id}", h_dummy, 0, 0, NULL, 0},
};
static const struct srv_app app = {
	.name = "test", .version = "0", .routes = tbl, .nroutes = sizeof(tbl) / sizeof(tbl[0])};

static struct arena *a;

static void setup(void)
{
	a = arena_new(4096);
}

static void teardown(void)
{
	arena_free(a);
}

static enum worker_route check(enum http_method m, const char *path, bool ops,
			       struct route_match *out)
{
	route_match(tbl, app.nroutes, m, path, a, out);
	return worker_route_check(&app, out, ops);
}

START_TEST(test_request_threads)
{
	struct route_match m;
	ck_assert_int_eq(check(HM_GET, "/api/items", false, &m), WORKER_ROUTE_OK);
	ck_assert_int_eq(m.idx, 1);
	ck_assert_int_eq(check(HM_POST, "/api/items", false, &m), WORKER_ROUTE_OK);
	ck_assert_int_eq(m.idx, 2);
	ck_assert_int_eq(check(HM_GET, "/health", false, &m), WORKER_ROUTE_OK);
	ck_assert_int_eq(check(HM_GET, "/nowhere", false, &m), WORKER_ROUTE_NOTFOUND);
	/* the path exists, the method does not */
	ck_assert_int_eq(check(HM_GET, "/api/items/7", false, &m), WORKER_ROUTE_METHOD);
	ck_assert_uint_eq(m.allow, (1u << HM_PUT) | (1u << HM_DELETE));
}
END_TEST

START_TEST(test_ops_thread_serves_internal_routes_only)
{
	struct route_match m;
	ck_assert_int_eq(check(HM_GET, "/health", true, &m), WORKER_ROUTE_OK);
	ck_assert_int_eq(check(HM_GET, "/api/items", true, &m), WORKER_ROUTE_NOTFOUND);
	ck_assert_int_eq(check(HM_POST, "/api/items", true, &m), WORKER_ROUTE_NOTFOUND);
	ck_assert_int_eq(check(HM_GET, "/nowhere", true, &m), WORKER_ROUTE_NOTFOUND);
	/* a 405 is still a 405 there (it says nothing a 404 would hide) */
	ck_assert_int_eq(check(HM_POST, "/health", true, &m), WORKER_ROUTE_METHOD);
}
END_TEST

START_TEST(test_allow_header)
{
	char buf[96];
	ck_assert_str_eq(worker_allow((1u << HM_PUT) | (1u << HM_DELETE), buf, sizeof(buf)),
			 "PUT, DELETE");
	ck_assert_str_eq(worker_allow(1u << HM_POST, buf, sizeof(buf)), "POST");
	ck_assert_str_eq(worker_allow(0, buf, sizeof(buf)), "");
	unsigned all = (1u << HM__MAX) - 1;
	ck_assert_str_eq(worker_allow(all, buf, sizeof(buf)),
			 "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
	/* bits past the table are ignored */
	ck_assert_str_eq(worker_allow((1u << HM_GET) | (1u << 20), buf, sizeof(buf)), "GET");
	/* too small: cut at a whole method, always terminated */
	char small[12];
	ck_assert_str_eq(worker_allow(all, small, sizeof(small)), "GET, HEAD");
	char tiny[2];
	ck_assert_str_eq(worker_allow(all, tiny, sizeof(tiny)), "");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_request_threads);
	tcase_add_test(tc, test_ops_thread_serves_internal_routes_only);
	tcase_add_test(tc, test_allow_header);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
