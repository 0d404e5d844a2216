/* test-route.c - unit tests of lib/route.c: path parameters, literal segments beating
 * parameters whatever the table order, 404 vs 405 with the allow mask (HEAD with GET),
 * percent-decoding of parameters, broken encodings, trailing slashes, method parsing. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "route.h"

static int h_dummy(struct req *r)
{
	(void)r;
	return 0;
}

/* The order is deliberate: parameter routes come before the literal ones they must lose to. */
static const struct route tbl[] = {
	/* 0 */ {HM_GET, "/api/products/{id}", h_dummy, 0, 0, NULL, 0},
	/* 1 */ {HM_GET, "/api/products/portfolio", h_dummy, 0, 0, NULL, 0},
	/* 2 */ {HM_PUT, "/api/products/{id}", h_dummy, 0, 0, NULL, 0},
	/* 3 */ {HM_DELETE, "/api/products/{id}", h_dummy, 0, 0, NULL, 0},
	/* 4 */ {HM_GET, "/api/products/{id}/shares/{share_id}", h_dummy, 0, 0, NULL, 0},
	/* 5 */ {HM_POST, "/api/products", h_dummy, 0, 0, NULL, 0},
	/* 6 */ {HM_GET, "/api/products", h_dummy, 0, 0, NULL, 0},
	/* 7 */ {HM_GET, "/", h_dummy, 0, 0, NULL, 0},
	/* 8 */ {HM_GET, "/api/", h_dummy, 0, 0, NULL, 0},
	/* 9 */ {HM_HEAD, "/only-head", h_dummy, 0, 0, NULL, 0},
	/* 10 */ {HM_POST, "/api/{kind}/export", h_dummy, 0, 0, NULL, 0},
	/* 11 */ {HM_POST, "/api/products/export", h_dummy, 0, 0, NULL, 0},
	/* 12 */ {HM_GET, "/a/{p1}/{p2}/{p3}/{p4}", h_dummy, 0, 0, NULL, 0},
};
#define NT (sizeof(tbl) / sizeof(tbl[0]))

static struct arena *a;

static void setup(void)
{
	a = arena_new(4096);
}

static void teardown(void)
{
	arena_free(a);
}

static struct route_match M(enum http_method m, const char *path) {
	struct route_match rm;
	route_match(tbl, NT, m, path, a, &rm);
	return rm;
}

#define BIT(m) (1u << (m))

START_TEST(test_literal_and_params)
{
	struct route_match m = M(HM_GET, "/api/products");
	ck_assert_int_eq(m.idx, 6);
	ck_assert_int_eq(m.nparams, 0);

	m = M(HM_GET, "/api/products/abc-123");
	ck_assert_int_eq(m.idx, 0);
	ck_assert_int_eq(m.nparams, 1);
	ck_assert_uint_eq(m.name_lens[0], 2);
	ck_assert(strncmp(m.names[0], "id", 2) == 0);
	ck_assert_str_eq(m.values[0], "abc-123");

	m = M(HM_GET, "/api/products/p1/shares/s9");
	ck_assert_int_eq(m.idx, 4);
	ck_assert_int_eq(m.nparams, 2);
	ck_assert(strncmp(m.names[1], "share_id", m.name_lens[1]) == 0);
	ck_assert_uint_eq(m.name_lens[1], 8);
	ck_assert_str_eq(m.values[0], "p1");
	ck_assert_str_eq(m.values[1], "s9");

	m = M(HM_GET, "/a/1/2/3/4");
	ck_assert_int_eq(m.idx, 12);
	ck_assert_int_eq(m.nparams, 4);
	ck_assert_str_eq(m.values[3], "4");
}
END_TEST

START_TEST(test_literal_beats_param)
{
	/* the parameter route is earlier in the table, the literal one still wins */
	struct route_match m = M(HM_GET, "/api/products/portfolio");
	ck_assert_int_eq(m.idx, 1);
	ck_assert_int_eq(m.nparams, 0);
	m = M(HM_POST, "/api/products/export");
	ck_assert_int_eq(m.idx, 11);
	m = M(HM_POST, "/api/users/export");
	ck_assert_int_eq(m.idx, 10);
	ck_assert_str_eq(m.values[0], "users");
	/* methods the literal route lacks fall back to the parameter route */
	m = M(HM_PUT, "/api/products/portfolio");
	ck_assert_int_eq(m.idx, 2);
	ck_assert_str_eq(m.values[0], "portfolio");
}
END_TEST

START_TEST(test_not_found)
{
	static const char *const paths[] = {
		"/nope",
		"/api/product",
		"/api/products/x/shares",
		"/api/products/x/shares/y/z",
		"/api/products/", /* empty parameter */
		"/a/1/2/3",
		"/API/products",
		"",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct route_match m = M(HM_GET, paths[i]);
		ck_assert_msg(m.idx == -1 && m.allow == 0, "%s: idx %d allow %x", paths[i], m.idx,
			      m.allow);
	}
}
END_TEST

START_TEST(test_method_not_allowed_mask)
{
	/* /api/products/{id} has GET, PUT, DELETE: PATCH is a 405 listing them, HEAD with GET */
	struct route_match m = M(HM_PATCH, "/api/products/x1");
	ck_assert_int_eq(m.idx, -1);
	ck_assert_uint_eq(m.allow, BIT(HM_GET) | BIT(HM_HEAD) | BIT(HM_PUT) | BIT(HM_DELETE));

	/* /api/products: GET and POST */
	m = M(HM_DELETE, "/api/products");
	ck_assert_int_eq(m.idx, -1);
	ck_assert_uint_eq(m.allow, BIT(HM_GET) | BIT(HM_HEAD) | BIT(HM_POST));

	/* POST-only path: no HEAD in the mask */
	m = M(HM_GET, "/api/users/export");
	ck_assert_int_eq(m.idx, -1);
	ck_assert_uint_eq(m.allow, BIT(HM_POST));

	/* the literal path collects the methods of the parameter routes it also matches */
	m = M(HM_POST, "/api/products/portfolio");
	ck_assert_int_eq(m.idx, -1);
	ck_assert_uint_eq(m.allow, BIT(HM_GET) | BIT(HM_HEAD) | BIT(HM_PUT) | BIT(HM_DELETE));
}
END_TEST

START_TEST(test_head_answers_get)
{
	struct route_match m = M(HM_HEAD, "/api/products/x");
	ck_assert_int_eq(m.idx, 0);
	ck_assert_str_eq(m.values[0], "x");
	m = M(HM_HEAD, "/");
	ck_assert_int_eq(m.idx, 7);
	/* an explicit HEAD route */
	m = M(HM_HEAD, "/only-head");
	ck_assert_int_eq(m.idx, 9);
	m = M(HM_GET, "/only-head");
	ck_assert_int_eq(m.idx, -1);
	ck_assert_uint_eq(m.allow, BIT(HM_HEAD));
	/* HEAD on a POST-only path is a 405 */
	m = M(HM_HEAD, "/api/users/export");
	ck_assert_int_eq(m.idx, -1);
	ck_assert_uint_eq(m.allow, BIT(HM_POST));
}
END_TEST

START_TEST(test_percent_decoding)
{
	struct route_match m = M(HM_GET, "/api/products/a%20b%2Fc%c3%A9");
	ck_assert_int_eq(m.idx, 0);
	ck_assert_str_eq(m.values[0], "a b/c\xc3\xa9");
	/* '+' is not a space in a path */
	m = M(HM_GET, "/api/products/a+b");
	ck_assert_str_eq(m.values[0], "a+b");
	/* an encoded slash stays inside one segment: it does not reach the shares route */
	m = M(HM_GET, "/api/products/p%2Fshares%2Fs");
	ck_assert_int_eq(m.idx, 0);
	ck_assert_str_eq(m.values[0], "p/shares/s");
}
END_TEST

START_TEST(test_broken_encoding_no_match)
{
	static const char *const paths[] = {
		"/api/products/%",
		"/api/products/%4",
		"/api/products/%zz",
		"/api/products/%g1",
		"/api/products/a%00b", /* NUL would truncate the value in C */
		"/api/products/ok/shares/%2",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct route_match m = M(HM_GET, paths[i]);
		ck_assert_msg(m.idx == -1 && m.allow == 0, "%s: idx %d allow %x", paths[i], m.idx,
			      m.allow);
	}
}
END_TEST

START_TEST(test_trailing_slash)
{
	/* routes match their pattern exactly: one trailing slash more or less is another path */
	struct route_match m = M(HM_GET, "/api/");
	ck_assert_int_eq(m.idx, 8);
	m = M(HM_GET, "/api");
	ck_assert_int_eq(m.idx, -1);
	ck_assert_uint_eq(m.allow, 0);
	m = M(HM_GET, "/api/products/");
	ck_assert_int_eq(m.idx, -1);
	m = M(HM_GET, "/api/products/x/");
	ck_assert_int_eq(m.idx, -1);
	m = M(HM_GET, "//api/products");
	ck_assert_int_eq(m.idx, -1);
}
END_TEST

START_TEST(test_url_decode)
{
	ck_assert_str_eq(url_decode(a, "a%41+b", 6, 1), "aA b");
	ck_assert_str_eq(url_decode(a, "a%41+b", 6, 0), "aA+b");
	ck_assert_str_eq(url_decode(a, "%e2%82%AC", 9, 0), "\xe2\x82\xac");
	/* n is honoured */
	ck_assert_str_eq(url_decode(a, "abc%41", 3, 0), "abc");
	ck_assert_str_eq(url_decode(a, "", 0, 0), "");
	ck_assert_ptr_null(url_decode(a, "%", 1, 0));
	ck_assert_ptr_null(url_decode(a, "%4", 2, 0));
	ck_assert_ptr_null(url_decode(a, "%41%4", 5, 0));
	ck_assert_ptr_null(url_decode(a, "%x1", 3, 0));
	ck_assert_ptr_null(url_decode(a, "a%00", 4, 0));
	/* a '%' whose hex digits lie beyond n is broken, even if the string goes on */
	ck_assert_ptr_null(url_decode(a, "%41", 2, 0));
}
END_TEST

START_TEST(test_method_parse)
{
	ck_assert_int_eq(http_method_parse("GET"), HM_GET);
	ck_assert_int_eq(http_method_parse("HEAD"), HM_HEAD);
	ck_assert_int_eq(http_method_parse("POST"), HM_POST);
	ck_assert_int_eq(http_method_parse("PUT"), HM_PUT);
	ck_assert_int_eq(http_method_parse("PATCH"), HM_PATCH);
	ck_assert_int_eq(http_method_parse("DELETE"), HM_DELETE);
	ck_assert_int_eq(http_method_parse("OPTIONS"), HM_OPTIONS);
	ck_assert_int_eq(http_method_parse("get"), HM__MAX); /* methods are case-sensitive */
	ck_assert_int_eq(http_method_parse("TRACE"), HM__MAX);
	ck_assert_int_eq(http_method_parse(""), HM__MAX);
	ck_assert_int_eq(http_method_parse(NULL), HM__MAX);
	for (int i = 0; i < HM__MAX; i++)
		ck_assert_int_eq(http_method_parse(http_method_names[i]), i);
}
END_TEST

static Suite *route_suite(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_literal_and_params);
	tcase_add_test(tc, test_literal_beats_param);
	tcase_add_test(tc, test_not_found);
	tcase_add_test(tc, test_method_not_allowed_mask);
	tcase_add_test(tc, test_head_answers_get);
	tcase_add_test(tc, test_percent_decoding);
	tcase_add_test(tc, test_broken_encoding_no_match);
	tcase_add_test(tc, test_trailing_slash);
	tcase_add_test(tc, test_url_decode);
	tcase_add_test(tc, test_method_parse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(route_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
