/* test-jx.c - unit tests of lib/jx.c: bounded parsing (depth limit, exactly one value, trailing
 * garbage), typed getters, and declarative validation producing FastAPI's 422 item shapes
 * ({"type","loc":["body",name],"msg"}) for missing, null, wrong types, uuid, email, enum,
 * max_len and strict unknown members. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jx.h"

static struct json_object *P(const char *s)
{
	return jx_parse(s, strlen(s), 32);
}

/* Nested arrays: depth levels of [ ... ]. */
static char *nested(int depth)
{
	char *s = malloc((size_t)depth * 2 + 1);
	for (int i = 0; i < depth; i++) {
		s[i] = '[';
		s[depth * 2 - 1 - i] = ']';
	}
	s[depth * 2] = '\0';
	return s;
}

START_TEST(test_parse_ok)
{
	struct json_object *o = P("{\"a\": [1, 2.5, \"x\", true, null, {\"b\": {}}]}");
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_is_type(o, json_type_object));
	json_object_put(o);
	o = P("  42  \n");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_object_get_int(o), 42);
	json_object_put(o);
	o = P("\"s\"");
	ck_assert_str_eq(json_object_get_string(o), "s");
	json_object_put(o);
	/* len is honoured: the bytes after it are not part of the input */
	const char *s = "{\"a\":1}GARBAGE";
	o = jx_parse(s, 7, 32);
	ck_assert_ptr_nonnull(o);
	json_object_put(o);
}
END_TEST

START_TEST(test_parse_malformed)
{
	static const char *const bad[] = {
		"",    "   ",   "{",      "{\"a\":}",   "{\"a\" 1}", "[1,]",          "{\"a\":1,}",
		"tru", "nul",   "\"open", "{\"a\":1}}", "[1] [2]",   "1 2",           "{}x",
		"01",  "{a:1}", "[1,2",   "\"\\x41\"",  "\x01",      "{\"a\":1}\x00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);
		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			len = 8; /* the NUL byte counts as trailing garbage */
		struct json_object *o = jx_parse(bad[i], len, 32);
		ck_assert_msg(o == NULL, "accepted malformed input #%zu: %s", i, bad[i]);
	}
}
END_TEST

START_TEST(test_parse_depth_limit)
{
	/* max_depth levels of nesting are accepted, one more is refused */
	for (int max = 2; max <= 40; max += 7) {
		char *ok = nested(max), *deep = nested(max + 1);
		struct json_object *o = jx_parse(ok, strlen(ok), max);
		ck_assert_msg(o != NULL, "depth %d refused with max %d", max, max);
		json_object_put(o);
		o = jx_parse(deep, strlen(deep), max);
		ck_assert_msg(o == NULL, "depth %d accepted with max %d", max + 1, max);
		free(ok);
		free(deep);
	}
	/* depth is the height of the value tree, the top-level value being 1 (json-c's count):
	 * a scalar inside the innermost container is one level more, objects count like arrays */
	const char *objs = "{\"a\":{\"b\":{\"c\":1}}}";
	struct json_object *o = jx_parse(objs, strlen(objs), 3);
	ck_assert_ptr_null(o);
	o = jx_parse(objs, strlen(objs), 4);
	ck_assert_ptr_nonnull(o);
	json_object_put(o);
	const char *flat = "{\"a\":1}";
	ck_assert_ptr_null(jx_parse(flat, strlen(flat), 1));
	o = jx_parse(flat, strlen(flat), 2);
	ck_assert_ptr_nonnull(o);
	json_object_put(o);
	/* a hostile 100 000-deep document is refused without blowing the stack */
	char *deep = nested(100000);
	ck_assert_ptr_null(jx_parse(deep, strlen(deep), 32));
	free(deep);
}
END_TEST

START_TEST(test_getters)
{
	struct json_object *o =
		P("{\"s\":\"str\",\"i\":7,\"b\":true,\"n\":null,\"d\":1.5,\"o\":{}}");
	ck_assert_str_eq(jx_get_str(o, "s"), "str");
	ck_assert_ptr_null(jx_get_str(o, "i")); /* wrong type */
	ck_assert_ptr_null(jx_get_str(o, "n"));
	ck_assert_ptr_null(jx_get_str(o, "zz"));
	ck_assert_int_eq(jx_get_int(o, "i", -1), 7);
	ck_assert_int_eq(jx_get_int(o, "s", -1), -1);
	ck_assert_int_eq(jx_get_int(o, "d", -1), -1); /* a double is not an integer */
	ck_assert(jx_get_bool(o, "b", false));
	ck_assert(!jx_get_bool(o, "i", false));
	ck_assert(jx_has(o, "n"));
	ck_assert(!jx_has(o, "zz"));
	ck_assert_ptr_null(jx_get(o, "n"));
	ck_assert_ptr_nonnull(jx_get(o, "o"));
	/* on a non-object */
	struct json_object *arr = P("[1]");
	ck_assert_ptr_null(jx_get_str(arr, "s"));
	ck_assert(!jx_has(arr, "s"));
	ck_assert(!jx_has(NULL, "s"));
	json_object_put(arr);
	json_object_put(o);
}
END_TEST

START_TEST(test_str_no_slash_escape)
{
	struct json_object *o = P("{\"u\":\"/api/x\"}");
	size_t len = 0;
	const char *s = jx_str(o, &len);
	ck_assert_str_eq(s, "{\"u\":\"/api/x\"}");
	ck_assert_uint_eq(len, strlen(s));
	json_object_put(o);
}
END_TEST

START_TEST(test_is_uuid)
{
	ck_assert(jx_is_uuid("123e4567-e89b-12d3-a456-426614174000"));
	ck_assert(jx_is_uuid("123E4567-E89B-12D3-A456-426614174000"));
	ck_assert(!jx_is_uuid("123e4567e89b12d3a456426614174000"));
	ck_assert(!jx_is_uuid("123e4567-e89b-12d3-a456-42661417400"));
	ck_assert(!jx_is_uuid("123e4567-e89b-12d3-a456-4266141740000"));
	ck_assert(!jx_is_uuid("123e4567-e89b-12d3-a456_426614174000"));
	ck_assert(!jx_is_uuid("g23e4567-e89b-12d3-a456-426614174000"));
	ck_assert(!jx_is_uuid("' OR 1=1 --"));
	ck_assert(!jx_is_uuid(""));
	ck_assert(!jx_is_uuid(NULL));
}
END_TEST

static const char *const roles[] = {"admin", "user", NULL};

static const struct jx_field fields[] = {
	{"name", JX_STR, JX_REQUIRED, 10, NULL},
	{"id", JX_UUID, 0, 0, NULL},
	{"email", JX_EMAIL, 0, 0, NULL},
	{"role", JX_ENUM, 0, 0, roles},
	{"count", JX_INT, 0, 0, NULL},
	{"ratio", JX_NUM, 0, 0, NULL},
	{"on", JX_BOOL, 0, 0, NULL},
	{"meta", JX_OBJ, JX_NULLABLE, 0, NULL},
	{"tags", JX_ARR, 0, 0, NULL},
	{"any", JX_ANY, 0, 0, NULL},
	{NULL, 0, 0, 0, NULL},
};

/* Validates body text against fields; returns the error list serialised ("" when valid). */
static char *validate(const char *body, bool strict)
{
	struct json_object *o = P(body);
	ck_assert_msg(o != NULL, "test body does not parse: %s", body);
	struct json_object *errs = (struct json_object *)1;
	bool ok = jx_validate(o, fields, strict, &errs);
	char *out;
	if (ok) {
		ck_assert_ptr_null(errs);
		out = strdup("");
	} else {
		ck_assert_ptr_nonnull(errs);
		ck_assert(json_object_is_type(errs, json_type_array));
		ck_assert_int_gt((int)json_object_array_length(errs), 0);
		out = strdup(jx_str(errs, NULL));
		json_object_put(errs);
	}
	json_object_put(o);
	return out;
}

#define EXPECT_VALID(body)                                                       \
	do {                                                                     \
		char *e_ = validate(body, true);                                 \
		ck_assert_msg(strcmp(e_, "") == 0, "%s rejected: %s", body, e_); \
		free(e_);                                                        \
	} while (0)

#define EXPECT_ERRORS(body, strict, want)                                                         \
	do {                                                                                      \
		char *e_ = validate(body, strict);                                                \
		ck_assert_msg(strcmp(e_, want) == 0, "%s\n  got  %s\n  want %s", body, e_, want); \
		free(e_);                                                                         \
	} while (0)

START_TEST(test_validate_valid)
{
	EXPECT_VALID("{\"name\":\"bob\"}");
	EXPECT_VALID("{\"name\":\"0123456789\",\"id\":\"123e4567-e89b-12d3-a456-426614174000\","
		     "\"email\":\"a.b+c@example.co.uk\",\"role\":\"admin\",\"count\":-3,"
		     "\"ratio\":2,\"on\":false,\"meta\":null,\"tags\":[],\"any\":[{}]}");
	EXPECT_VALID("{\"name\":\"x\",\"ratio\":0.25,\"meta\":{\"k\":1},\"any\":\"s\"}");
	/* null needs JX_NULLABLE, even for JX_ANY */
	EXPECT_ERRORS("{\"name\":\"x\",\"any\":null}", false,
		      "[{\"type\":\"null_type\",\"loc\":[\"body\",\"any\"],"
		      "\"msg\":\"Input should not be null\"}]");
}
END_TEST

START_TEST(test_validate_missing_required)
{
	EXPECT_ERRORS(
		"{}", false,
		"[{\"type\":\"missing\",\"loc\":[\"body\",\"name\"],\"msg\":\"Field required\"}]");
	/* null for a required non-nullable field */
	EXPECT_ERRORS("{\"name\":null}", false,
		      "[{\"type\":\"null_type\",\"loc\":[\"body\",\"name\"],"
		      "\"msg\":\"Field required\"}]");
	/* null for an optional non-nullable field */
	EXPECT_ERRORS("{\"name\":\"a\",\"count\":null}", false,
		      "[{\"type\":\"null_type\",\"loc\":[\"body\",\"count\"],"
		      "\"msg\":\"Input should not be null\"}]");
}
END_TEST

START_TEST(test_validate_types)
{
	EXPECT_ERRORS("{\"name\":5}", false,
		      "[{\"type\":\"string_type\",\"loc\":[\"body\",\"name\"],"
		      "\"msg\":\"Input should be a valid string\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"count\":\"5\"}", false,
		      "[{\"type\":\"int_type\",\"loc\":[\"body\",\"count\"],"
		      "\"msg\":\"Input should be a valid integer\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"count\":1.5}", false,
		      "[{\"type\":\"int_type\",\"loc\":[\"body\",\"count\"],"
		      "\"msg\":\"Input should be a valid integer\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"ratio\":\"1\"}", false,
		      "[{\"type\":\"float_type\",\"loc\":[\"body\",\"ratio\"],"
		      "\"msg\":\"Input should be a valid number\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"on\":1}", false,
		      "[{\"type\":\"bool_type\",\"loc\":[\"body\",\"on\"],"
		      "\"msg\":\"Input should be a valid boolean\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"meta\":[]}", false,
		      "[{\"type\":\"dict_type\",\"loc\":[\"body\",\"meta\"],"
		      "\"msg\":\"Input should be a valid dictionary\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"tags\":{}}", false,
		      "[{\"type\":\"list_type\",\"loc\":[\"body\",\"tags\"],"
		      "\"msg\":\"Input should be a valid list\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"role\":3}", false,
		      "[{\"type\":\"string_type\",\"loc\":[\"body\",\"role\"],"
		      "\"msg\":\"Input should be a valid string\"}]");
}
END_TEST

START_TEST(test_validate_string_rules)
{
	EXPECT_ERRORS("{\"name\":\"01234567890\"}", false,
		      "[{\"type\":\"string_too_long\",\"loc\":[\"body\",\"name\"],"
		      "\"msg\":\"String is too long\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"id\":\"not-a-uuid\"}", false,
		      "[{\"type\":\"uuid_parsing\",\"loc\":[\"body\",\"id\"],"
		      "\"msg\":\"Input should be a valid UUID\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"email\":\"nobody\"}", false,
		      "[{\"type\":\"value_error\",\"loc\":[\"body\",\"email\"],"
		      "\"msg\":\"value is not a valid email address\"}]");
	EXPECT_ERRORS("{\"name\":\"a\",\"role\":\"root\"}", false,
		      "[{\"type\":\"enum\",\"loc\":[\"body\",\"role\"],"
		      "\"msg\":\"Input should be one of the allowed values\"}]");
	/* an embedded NUL cannot sneak past C string handling */
	EXPECT_ERRORS("{\"name\":\"a\\u0000b\"}", false,
		      "[{\"type\":\"string_type\",\"loc\":[\"body\",\"name\"],"
		      "\"msg\":\"Input should not contain NUL characters\"}]");
}
END_TEST

START_TEST(test_validate_emails)
{
	static const char *const good[] = {"a@b.co", "first.last@sub.example.org", "x+y@d.io"};
	static const char *const bad[] = {"@b.co",  "a@",       "a@b",     "a@@b.co",
					  "a@b.",   "a b@c.de", "a@b..c;", "<a>@b.co",
					  "a@.com", "a,b@c.de", "ab"};
	char body[400];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(body, sizeof(body), "{\"name\":\"a\",\"email\":\"%s\"}", good[i]);
		EXPECT_VALID(body);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"name\":\"a\",\"email\":\"%s\"}", bad[i]);
		char *e = validate(body, false);
		ck_assert_msg(strstr(e, "value_error") != NULL, "%s accepted", bad[i]);
		free(e);
	}
	/* 254 bytes at most */
	char longmail[300];
	memset(longmail, 'a', 250);
	strcpy(longmail + 250, "@b.co");
	snprintf(body, sizeof(body), "{\"name\":\"a\",\"email\":\"%s\"}", longmail);
	char *e = validate(body, false);
	ck_assert_msg(strstr(e, "value_error") != NULL, "255-byte address accepted");
	free(e);
}
END_TEST

START_TEST(test_validate_strict_unknown)
{
	EXPECT_ERRORS("{\"name\":\"a\",\"is_admin\":true}", true,
		      "[{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"is_admin\"],"
		      "\"msg\":\"Extra inputs are not permitted\"}]");
	/* not strict: ignored */
	EXPECT_ERRORS("{\"name\":\"a\",\"is_admin\":true}", false, "");
}
END_TEST

START_TEST(test_validate_collects_all_errors)
{
	/* every problem is listed, in field order, then the unknown members */
	EXPECT_ERRORS(
		"{\"count\":\"x\",\"zzz\":1,\"on\":\"y\"}", true,
		"[{\"type\":\"missing\",\"loc\":[\"body\",\"name\"],\"msg\":\"Field required\"},"
		"{\"type\":\"int_type\",\"loc\":[\"body\",\"count\"],"
		"\"msg\":\"Input should be a valid integer\"},"
		"{\"type\":\"bool_type\",\"loc\":[\"body\",\"on\"],"
		"\"msg\":\"Input should be a valid boolean\"},"
		"{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"zzz\"],"
		"\"msg\":\"Extra inputs are not permitted\"}]");
}
END_TEST

START_TEST(test_validate_not_an_object)
{
	static const char *const bodies[] = {"[]", "\"x\"", "1"};
	for (size_t i = 0; i < 3; i++)
		EXPECT_ERRORS(bodies[i], false,
			      "[{\"type\":\"model_attributes_type\",\"loc\":[\"body\"],"
			      "\"msg\":\"Input should be a valid dictionary\"}]");
	struct json_object *errs = NULL;
	ck_assert(!jx_validate(NULL, fields, false, &errs));
	ck_assert_ptr_nonnull(errs);
	json_object_put(errs);
}
END_TEST

START_TEST(test_error_item)
{
	struct json_object *it = jx_error_item("query", "limit", "int_parsing", "bad");
	ck_assert_str_eq(
		jx_str(it, NULL),
		"{\"type\":\"int_parsing\",\"loc\":[\"query\",\"limit\"],\"msg\":\"bad\"}");
	json_object_put(it);
	it = jx_error_item("body", NULL, "missing", "Field required");
	ck_assert_str_eq(jx_str(it, NULL),
			 "{\"type\":\"missing\",\"loc\":[\"body\"],\"msg\":\"Field required\"}");
	json_object_put(it);
}
END_TEST

START_TEST(test_nodes_counted_without_parsing)
{
	ck_assert_int_eq(jx_nodes("1", 1), 1);
	const char *o = "{\"a\":[1,2,{}],\"b\":\"x,{[\\\",\"}";
	/* {, [, two commas in the array, {, the comma between members: string bytes not counted */
	ck_assert_int_eq(jx_nodes(o, strlen(o)), 7);
	char big[3 * 1000 + 3];
	size_t n = 0;
	big[n++] = '[';
	for (int i = 0; i < 1000; i++) {
		memcpy(big + n, i ? ",{}" : "{}", i ? 3 : 2);
		n += i ? 3 : 2;
	}
	big[n++] = ']';
	ck_assert_int_eq(jx_nodes(big, n), 1 + 1 + 1000 + 999);
}
END_TEST

START_TEST(test_validate_object_size_cap)
{
	static const struct jx_field f[] = {
		{"meta", JX_OBJ, 0, 16, NULL},
		{"list", JX_ARR, 0, 8, NULL},
		{"any", JX_ANY, 0, 4, NULL},
		{NULL, 0, 0, 0, NULL},
	};
	struct json_object *errs = NULL;
	struct json_object *ok = jx_parse("{\"meta\":{\"a\":1},\"list\":[1,2],\"any\":12}", 38, 8);
	ck_assert_ptr_nonnull(ok);
	ck_assert(jx_validate(ok, f, false, &errs));
	json_object_put(ok);
	const char *s = "{\"meta\":{\"aaaaaaaaaaaa\":1},\"list\":[1,2,3,4],\"any\":\"long\"}";
	struct json_object *bad = jx_parse(s, strlen(s), 8);
	ck_assert_ptr_nonnull(bad);
	ck_assert(!jx_validate(bad, f, false, &errs));
	ck_assert_int_eq(json_object_array_length(errs), 3);
	struct json_object *e0 = json_object_array_get_idx(errs, 0);
	ck_assert_str_eq(jx_get_str(e0, "type"), "too_long");
	json_object_put(errs);
	json_object_put(bad);
}
END_TEST

START_TEST(test_utf8_chars_and_hex_digits)
{
	ck_assert_uint_eq(jx_utf8_chars(""), 0);
	ck_assert_uint_eq(jx_utf8_chars("password"), 8);
	ck_assert_uint_eq(jx_utf8_chars("p\xc3\xa4ss"), 4); /* a with umlaut: 2 bytes */
	ck_assert_uint_eq(jx_utf8_chars("\xf0\x9f\x94\x91\xe2\x82\xac"), 2); /* 4 + 3 bytes */
	/* cutting: never inside a character */
	const char *eur = "ab\xe2\x82\xac"; /* a, b, euro sign (3 bytes) */
	ck_assert_uint_eq(jx_utf8_cut(eur, 5, 10), 5);
	ck_assert_uint_eq(jx_utf8_cut(eur, 5, 5), 5);
	ck_assert_uint_eq(jx_utf8_cut(eur, 5, 4), 2);
	ck_assert_uint_eq(jx_utf8_cut(eur, 5, 3), 2);
	ck_assert_uint_eq(jx_utf8_cut(eur, 5, 2), 2);
	ck_assert_uint_eq(jx_utf8_cut(eur, 5, 1), 1);
	ck_assert_uint_eq(jx_utf8_cut("\xe2\x82\xac", 3, 2), 0);
	ck_assert_int_eq(jx_hexval('0'), 0);
	ck_assert_int_eq(jx_hexval('9'), 9);
	ck_assert_int_eq(jx_hexval('a'), 10);
	ck_assert_int_eq(jx_hexval('F'), 15);
	ck_assert_int_eq(jx_hexval('g'), -1);
	ck_assert_int_eq(jx_hexval('/'), -1);
	ck_assert_int_eq(jx_hexval(0xe9), -1);
}
END_TEST

START_TEST(test_utf8_text)
{
#define U(lit) (const unsigned char *)(lit), sizeof(lit) - 1
	ck_assert(jx_utf8_text(U("plain ascii")));
	ck_assert(jx_utf8_text(U("\xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x92\xa1")));
	ck_assert(!jx_utf8_text(U("nul\0byte")));
	ck_assert(!jx_utf8_text(U("\xc0\xaf")));         /* overlong '/' */
	ck_assert(!jx_utf8_text(U("\xed\xa0\x80")));     /* a surrogate */
	ck_assert(!jx_utf8_text(U("\xf4\x90\x80\x80"))); /* above U+10FFFF */
	ck_assert(!jx_utf8_text(U("\xe2\x9c")));         /* cut short */
	ck_assert(!jx_utf8_text(U("\xff")));
#undef U
}
END_TEST

static Suite *jx_suite(void)
{
	Suite *s = suite_create("jx");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_parse_ok);
	tcase_add_test(tc, test_parse_malformed);
	tcase_add_test(tc, test_parse_depth_limit);
	tcase_add_test(tc, test_getters);
	tcase_add_test(tc, test_str_no_slash_escape);
	tcase_add_test(tc, test_is_uuid);
	tcase_add_test(tc, test_validate_valid);
	tcase_add_test(tc, test_utf8_text);
	tcase_add_test(tc, test_nodes_counted_without_parsing);
	tcase_add_test(tc, test_validate_object_size_cap);
	tcase_add_test(tc, test_validate_missing_required);
	tcase_add_test(tc, test_validate_types);
	tcase_add_test(tc, test_validate_string_rules);
	tcase_add_test(tc, test_validate_emails);
	tcase_add_test(tc, test_validate_strict_unknown);
	tcase_add_test(tc, test_validate_collects_all_errors);
	tcase_add_test(tc, test_validate_not_an_object);
	tcase_add_test(tc, test_error_item);
	tcase_add_test(tc, test_utf8_chars_and_hex_digits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(jx_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
