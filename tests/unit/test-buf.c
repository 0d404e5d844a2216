/* test-buf.c - unit tests of lib/buf.c: appends, growth (arena- and malloc-backed), printf,
 * JSON string escaping (RFC 8259 section 7, control characters included) and HTML escaping. */
#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"

START_TEST(test_append_and_terminator)
{
	struct buf b;
	buf_init(&b, NULL);
	buf_puts(&b, "ab");
	buf_putc(&b, 'c');
	buf_append(&b, "defXX", 3);
	ck_assert_uint_eq(b.len, 6);
	ck_assert_str_eq(b.p, "abcdef");
	buf_append(&b, "", 0);
	ck_assert_str_eq(b.p, "abcdef");
	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(b.p, "");
	buf_puts(&b, "z");
	ck_assert_str_eq(b.p, "z");
	buf_free(&b);
	ck_assert_ptr_null(b.p);
	buf_free(&b); /* twice is fine */
}
END_TEST

START_TEST(test_binary_bytes)
{
	struct buf b;
	buf_init(&b, NULL);
	buf_append(&b, "a\0b", 3);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_mem_eq(b.p, "a\0b", 4);
	buf_free(&b);
}
END_TEST

static void grow_check(struct arena *a)
{
	struct buf b;
	buf_init(&b, a);
	/* 100 000 appends of varying sizes: content must survive every reallocation */
	for (int i = 0; i < 20000; i++)
		buf_printf(&b, "%d,", i);
	size_t len = b.len;
	ck_assert_uint_eq(strlen(b.p), len);
	ck_assert_uint_gt(b.cap, len);
	ck_assert(strncmp(b.p, "0,1,2,3,", 8) == 0);
	ck_assert(strcmp(b.p + len - 12, "19998,19999,") == 0);
	/* a single append larger than twice the capacity */
	char *big = malloc(1 << 20);
	memset(big, 'x', 1 << 20);
	buf_append(&b, big, 1 << 20);
	ck_assert_uint_eq(b.len, len + (1 << 20));
	ck_assert_int_eq(b.p[b.len - 1], 'x');
	ck_assert_int_eq(b.p[b.len], '\0');
	ck_assert(strncmp(b.p, "0,1,2,3,", 8) == 0);
	free(big);
	if (!a)
		buf_free(&b);
}

START_TEST(test_growth_malloc)
{
	grow_check(NULL);
}
END_TEST

START_TEST(test_growth_arena)
{
	struct arena *a = arena_new(4096);
	grow_check(a);
	arena_free(a);
}
END_TEST

START_TEST(test_printf_empty)
{
	struct buf b;
	buf_init(&b, NULL);
	buf_printf(&b, "%s", "");
	buf_puts(&b, "x");
	buf_printf(&b, "%s%03d", "-", 7);
	ck_assert_str_eq(b.p, "x-007");
	buf_free(&b);
}
END_TEST

/* Escapes s with buf_json_str and returns a malloc'd copy of the output. */
static char *json_of(const char *s)
{
	struct buf b;
	buf_init(&b, NULL);
	buf_json_str(&b, s);
	char *out = strdup(b.p);
	buf_free(&b);
	return out;
}

START_TEST(test_json_escaping)
{
	char *s;
	s = json_of("plain");
	ck_assert_str_eq(s, "\"plain\"");
	free(s);
	s = json_of("");
	ck_assert_str_eq(s, "\"\"");
	free(s);
	s = json_of(NULL);
	ck_assert_str_eq(s, "null");
	free(s);
	s = json_of("q\"b\\s/");
	ck_assert_str_eq(s, "\"q\\\"b\\\\s/\"");
	free(s);
	s = json_of("a\nb\rc\td");
	ck_assert_str_eq(s, "\"a\\nb\\rc\\td\"");
	free(s);
	/* every other control character as \u00XX, lower-case hex */
	s = json_of("\x01\x08\x0c\x1f\x7f");
	ck_assert_str_eq(s, "\"\\u0001\\u0008\\u000c\\u001f\x7f\"");
	free(s);
	/* UTF-8 passes through unchanged */
	s = json_of("caf\xc3\xa9 \xe2\x82\xac");
	ck_assert_str_eq(s, "\"caf\xc3\xa9 \xe2\x82\xac\"");
	free(s);
}
END_TEST

START_TEST(test_json_escaping_roundtrip)
{
	/* every ASCII byte 1..127 in one string: a JSON parser must give it back unchanged */
	char in[256];
	for (int i = 1; i < 128; i++)
		in[i - 1] = (char)i;
	in[127] = '\0';
	char *s = json_of(in);
	struct json_object *o = json_tokener_parse(s);
	ck_assert_msg(o != NULL, "json-c rejected %s", s);
	ck_assert(json_object_is_type(o, json_type_string));
	ck_assert_str_eq(json_object_get_string(o), in);
	/* no raw control character in the output */
	for (const char *p = s; *p; p++)
		ck_assert_msg((unsigned char)*p >= 0x20, "raw control byte 0x%02x", *p);
	json_object_put(o);
	free(s);
}
END_TEST

START_TEST(test_html_escaping)
{
	struct buf b;
	buf_init(&b, NULL);
	buf_html(&b, "<a href=\"x\" title='y'>Tom & Jerry</a>");
	ck_assert_str_eq(b.p,
			 "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;");
	buf_reset(&b);
	buf_html(&b, "safe text");
	ck_assert_str_eq(b.p, "safe text");
	buf_html(&b, NULL); /* nothing appended */
	ck_assert_str_eq(b.p, "safe text");
	buf_reset(&b);
	buf_html(&b, "&amp;"); /* already-escaped text is escaped again, never trusted */
	ck_assert_str_eq(b.p, "&amp;amp;");
	buf_free(&b);
}
END_TEST

static Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_append_and_terminator);
	tcase_add_test(tc, test_binary_bytes);
	tcase_add_test(tc, test_growth_malloc);
	tcase_add_test(tc, test_growth_arena);
	tcase_add_test(tc, test_printf_empty);
	tcase_add_test(tc, test_json_escaping);
	tcase_add_test(tc, test_json_escaping_roundtrip);
	tcase_add_test(tc, test_html_escaping);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(buf_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
