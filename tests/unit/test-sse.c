/* test-sse.c - unit tests of lib/sse.c: the examples of WHATWG HTML 9.2.6 ("Interpreting an
 * event stream"), the same streams fed whole, one byte at a time and split at every point,
 * LF / CR / CRLF line endings (a CRLF split across two chunks), the byte order mark, the
 * caps, a callback that stops the parser, and the writer round-tripping through the parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sse.h"

/* Every dispatched event, serialised as "<type>|<data>|<id or (none)>\x1e" in one buffer, so
 * two parses compare with one string comparison. */
struct rec {
	struct buf out; /* serialised events */
	int n;          /* events seen */
	int stop_at;    /* return nonzero on this event number (1-based), 0 = never */
};

static int rec_event(void *u, const char *event, const char *data, size_t len, const char *id)
{
	struct rec *r = u;
	ck_assert_uint_eq(strlen(data), len); /* NUL-terminated at len (no NUL in these tests) */
	buf_puts(&r->out, event);
	buf_putc(&r->out, '|');
	buf_append(&r->out, data, len);
	buf_putc(&r->out, '|');
	buf_puts(&r->out, id ? id : "(none)");
	buf_putc(&r->out, '\x1e');
	r->n++;
	return r->stop_at && r->n == r->stop_at;
}

static void rec_init(struct rec *r)
{
	buf_init(&r->out, NULL);
	buf_putc(&r->out, '\0'); /* never NULL, even with no event */
	buf_reset(&r->out);
	r->n = 0;
	r->stop_at = 0;
}

/* Parses s fed in chunks of at most step bytes (0: whole); returns the serialised events,
 * malloc'ed. */
static char *parse_chunked(const char *s, size_t len, size_t step)
{
	struct rec r;
	rec_init(&r);
	struct sse_parser *p = sse_parser_new(0, rec_event, &r);
	ck_assert_ptr_nonnull(p);
	size_t i = 0;
	if (step == 0)
		step = len ? len : 1;
	while (i < len) {
		size_t n = len - i < step ? len - i : step;
		ck_assert_int_eq(sse_parser_feed(p, s + i, n), 0);
		i += n;
	}
	sse_parser_free(p);
	return r.out.p;
}

/* Parses s split in two at split. */
static char *parse_split(const char *s, size_t len, size_t split)
{
	struct rec r;
	rec_init(&r);
	struct sse_parser *p = sse_parser_new(0, rec_event, &r);
	ck_assert_int_eq(sse_parser_feed(p, s, split), 0);
	ck_assert_int_eq(sse_parser_feed(p, s + split, len - split), 0);
	sse_parser_free(p);
	return r.out.p;
}

static char *parse(const char *s)
{
	return parse_chunked(s, strlen(s), 0);
}

static void assert_parses(const char *stream, const char *want)
{
	char *got = parse(stream);
	ck_assert_str_eq(got, want);
	free(got);
}

/* 9.2.6 example: three data lines make one event joined by LF. */
START_TEST(test_spec_stock_ticker)
{
	assert_parses("data: YHOO\ndata: +2\ndata: 10\n\n", "message|YHOO\n+2\n10|(none)\x1e");
}
END_TEST

/* 9.2.6 example: comment, id set then reset by a bare "id", one space removed only. */
START_TEST(test_spec_ids_and_spaces)
{
	assert_parses(": test stream\n\n"
		      "data: first event\nid: 1\n\n"
		      "data:second event\nid\n\n"
		      "data:  third event\n\n",
		      "message|first event|1\x1e"
		      "message|second event|(none)\x1e"
		      "message| third event|(none)\x1e");
}
END_TEST

/* 9.2.6 example: "data" without colon gives an empty line of data; the last block has no
 * blank line and is never dispatched. */
START_TEST(test_spec_empty_data)
{
	assert_parses("data\n\ndata\ndata\n\ndata:", "message||(none)\x1e"
						     "message|\n|(none)\x1e");
}
END_TEST

/* 9.2.6 example: the space after the colon is optional. */
START_TEST(test_spec_optional_space)
{
	assert_parses("data:test\n\ndata: test\n\n", "message|test|(none)\x1e"
						     "message|test|(none)\x1e");
}
END_TEST

START_TEST(test_event_type_and_fields)
{
	/* event type applies to one event only; the id persists; retry and unknown fields are
	 * ignored; a block without data dispatches nothing but its id stays */
	assert_parses("event: add\ndata: 73857293\nretry: 10\nfoo: bar\n\n"
		      "data: plain\n\n"
		      "id: 7\nevent: lone\n\n"
		      "data: after\n\n",
		      "add|73857293|(none)\x1e"
		      "message|plain|(none)\x1e"
		      "message|after|7\x1e");
	/* an id holding NUL is ignored (9.2.6 "id" field) */
	static const char withnul[] = "id: 1\n\ndata: a\nid: x\0y\n\n";
	char *got = parse_chunked(withnul, sizeof(withnul) - 1, 0);
	ck_assert_str_eq(got, "message|a|1\x1e");
	free(got);
	/* field names are case-sensitive; a colon in the value stays */
	assert_parses("Data: no\ndata: a:b: c\n\n", "message|a:b: c|(none)\x1e");
}
END_TEST

START_TEST(test_line_endings)
{
	const char *want = "e|one\ntwo|5\x1e"
			   "message|three|5\x1e";
	assert_parses("id: 5\nevent: e\ndata: one\ndata: two\n\ndata: three\n\n", want);
	assert_parses("id: 5\revent: e\rdata: one\rdata: two\r\rdata: three\r\r", want);
	assert_parses("id: 5\r\nevent: e\r\ndata: one\r\ndata: two\r\n\r\ndata: three\r\n\r\n",
		      want);
	assert_parses("id: 5\r\nevent: e\rdata: one\ndata: two\r\n\rdata: three\n\r\n", want);
	/* LF CR is two line ends (a blank line), not one */
	assert_parses("data: a\n\rdata: b\r\n\r\n", "message|a|(none)\x1e"
						    "message|b|(none)\x1e");
}
END_TEST

/* A CR that ends one chunk and the LF that starts the next are one line end. */
START_TEST(test_crlf_across_chunks)
{
	struct rec r;
	rec_init(&r);
	struct sse_parser *p = sse_parser_new(0, rec_event, &r);
	ck_assert_int_eq(sse_parser_feed(p, "data: a\r", 8), 0);
	ck_assert_int_eq(sse_parser_feed(p, "\ndata: b\r", 9), 0);
	ck_assert_int_eq(sse_parser_feed(p, "\n", 1), 0);
	ck_assert_int_eq(r.n, 0);
	ck_assert_int_eq(sse_parser_feed(p, "\r", 1), 0);
	ck_assert_int_eq(r.n, 1); /* the blank line is seen at its CR */
	ck_assert_int_eq(sse_parser_feed(p, "\n", 1), 0);
	ck_assert_int_eq(sse_parser_feed(p, NULL, 0), 0);
	ck_assert_int_eq(r.n, 1);
	ck_assert_str_eq(r.out.p, "message|a\nb|(none)\x1e");
	sse_parser_free(p);
	buf_free(&r.out);
}
END_TEST

/* One stream with everything in it gives the same events however it is cut. */
START_TEST(test_every_split_point)
{
	const char *s = "\xEF\xBB\xBF: comment\r\n"
			"id: 42\r\n"
			"event: delta\r"
			"data: {\"text\":\"h\xC3\xA9llo\"}\n"
			"data\r\n"
			"retry: 3000\n"
			"\r\n"
			"data: second\r"
			"\r"
			": keep-alive\n"
			"data: third line 1\r\n"
			"data:third line 2\n"
			"\n"
			"data: never dispatched\n";
	size_t len = strlen(s);
	char *whole = parse_chunked(s, len, 0);
	ck_assert_str_eq(whole, "delta|{\"text\":\"h\xC3\xA9llo\"}\n|42\x1e"
				"message|second|42\x1e"
				"message|third line 1\nthird line 2|42\x1e");
	for (size_t step = 1; step <= 7; step++) {
		char *got = parse_chunked(s, len, step);
		ck_assert_msg(strcmp(got, whole) == 0, "step %zu: %s", step, got);
		free(got);
	}
	for (size_t split = 0; split <= len; split++) {
		char *got = parse_split(s, len, split);
		ck_assert_msg(strcmp(got, whole) == 0, "split %zu: %s", split, got);
		free(got);
	}
	free(whole);
}
END_TEST

START_TEST(test_bom)
{
	/* one BOM at the start is skipped, also split over chunks */
	assert_parses("\xEF\xBB\xBF"
		      "data: x\n\n",
		      "message|x|(none)\x1e");
	char *got = parse_chunked("\xEF\xBB\xBF"
				  "data: x\n\n",
				  12, 1);
	ck_assert_str_eq(got, "message|x|(none)\x1e");
	free(got);
	/* a second BOM is part of the field name: an unknown field, ignored */
	assert_parses("\xEF\xBB\xBF\xEF\xBB\xBF"
		      "data: x\n\ndata: y\n\n",
		      "message|y|(none)\x1e");
	/* a BOM later in the stream is not skipped either */
	assert_parses("data: a\n\n\xEF\xBB\xBF"
		      "data: b\n\n",
		      "message|a|(none)\x1e");
}
END_TEST

START_TEST(test_caps)
{
	struct rec r;
	rec_init(&r);
	/* a 16-byte cap: "data: 0123456789" is exactly 16 bytes, then 11 of data are held */
	struct sse_parser *p = sse_parser_new(16, rec_event, &r);
	ck_assert_int_eq(sse_parser_feed(p, "data: 0123456789\n\n", 18), 0);
	ck_assert_int_eq(r.n, 1);
	/* one line too long, arriving in pieces */
	ck_assert_int_eq(sse_parser_feed(p, "data: 01234", 11), 0);
	ck_assert_int_eq(sse_parser_feed(p, "567890", 6), -1);
	/* failed for good */
	ck_assert_int_eq(sse_parser_feed(p, "\n\ndata: x\n\n", 11), -1);
	ck_assert_int_eq(r.n, 1);
	sse_parser_free(p);

	/* many short data lines: the event as a whole is capped */
	p = sse_parser_new(16, rec_event, &r);
	ck_assert_int_eq(sse_parser_feed(p, "data: 1234\ndata: 5678\n", 22), 0);
	ck_assert_int_eq(sse_parser_feed(p, "data: 9abc\n", 11), -1);
	sse_parser_free(p);

	/* comments count against the line cap too, but not against later events */
	p = sse_parser_new(16, rec_event, &r);
	ck_assert_int_eq(sse_parser_feed(p, ": 0123456789abc\n", 16), 0);
	ck_assert_int_eq(sse_parser_feed(p, ": 0123456789abcde\n", 18), -1);
	sse_parser_free(p);

	ck_assert_ptr_null(sse_parser_new(16, NULL, NULL));
	sse_parser_free(NULL);
	buf_free(&r.out);
}
END_TEST

START_TEST(test_callback_stops)
{
	struct rec r;
	rec_init(&r);
	r.stop_at = 2;
	struct sse_parser *p = sse_parser_new(0, rec_event, &r);
	const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
	ck_assert_int_eq(sse_parser_feed(p, s, strlen(s)), -1);
	ck_assert_int_eq(r.n, 2);
	ck_assert_int_eq(sse_parser_feed(p, s, strlen(s)), -1);
	ck_assert_int_eq(r.n, 2);
	sse_parser_free(p);
	buf_free(&r.out);
}
END_TEST

START_TEST(test_writer_format)
{
	struct buf b;
	buf_init(&b, NULL);
	sse_write_event(&b, "7", "delta", "hello", 5);
	ck_assert_str_eq(b.p, "id: 7\nevent: delta\ndata: hello\n\n");
	buf_reset(&b);
	sse_write_event(&b, NULL, NULL, "a\r\nb\rc\nd", 8);
	ck_assert_str_eq(b.p, "data: a\ndata: b\ndata: c\ndata: d\n\n");
	buf_reset(&b);
	sse_write_event(&b, "1\r\n2", "ev\nil\r", "", 0);
	ck_assert_str_eq(b.p, "id: 12\nevent: evil\ndata: \n\n");
	buf_reset(&b);
	sse_write_event(&b, NULL, NULL, NULL, 0);
	ck_assert_str_eq(b.p, "data: \n\n");
	buf_reset(&b);
	sse_write_event(&b, NULL, NULL, "x\n", 2);
	ck_assert_str_eq(b.p, "data: x\ndata: \n\n");
	buf_reset(&b);
	sse_write_comment(&b, "keep-alive");
	ck_assert_str_eq(b.p, ": keep-alive\n");
	buf_reset(&b);
	sse_write_comment(&b, "two\nlines");
	ck_assert_str_eq(b.p, ": two\n: lines\n");
	buf_free(&b);
}
END_TEST

/* Whatever the writer emits, the parser gives back: data with every kind of line break
 * (CR and CRLF come back as LF), empty lines, a trailing break; comments vanish. */
START_TEST(test_writer_roundtrip)
{
	static const struct {
		const char *data; /* written */
		const char *want; /* parsed back */
	} cases[] = {
		{"single", "single"},
		{"", ""},
		{"a\nb", "a\nb"},
		{"a\r\nb\rc", "a\nb\nc"},
		{"\n\nmiddle\n\n", "\n\nmiddle\n\n"},
		{"trailing\r\n", "trailing\n"},
		{" leading space", " leading space"},
		{": not a comment", ": not a comment"},
		{"{\"k\": \"v\\n\"}", "{\"k\": \"v\\n\"}"},
	};
	struct buf b, want;
	buf_init(&b, NULL);
	buf_init(&want, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[16];
		snprintf(id, sizeof(id), "%zu", i);
		sse_write_comment(&b, "ping");
		sse_write_event(&b, id, i % 2 ? "odd" : NULL, cases[i].data, strlen(cases[i].data));
		buf_printf(&want, "%s|%s|%s\x1e", i % 2 ? "odd" : "message", cases[i].want, id);
	}
	for (size_t step = 0; step <= 3; step++) {
		char *got = parse_chunked(b.p, b.len, step);
		ck_assert_str_eq(got, want.p);
		free(got);
	}
	buf_free(&b);
	buf_free(&want);
}
END_TEST

static Suite *sse_suite(void)
{
	Suite *s = suite_create("sse");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_spec_stock_ticker);
	tcase_add_test(tc, test_spec_ids_and_spaces);
	tcase_add_test(tc, test_spec_empty_data);
	tcase_add_test(tc, test_spec_optional_space);
	tcase_add_test(tc, test_event_type_and_fields);
	tcase_add_test(tc, test_line_endings);
	tcase_add_test(tc, test_crlf_across_chunks);
	tcase_add_test(tc, test_every_split_point);
	tcase_add_test(tc, test_bom);
	tcase_add_test(tc, test_caps);
	tcase_add_test(tc, test_callback_stops);
	tcase_add_test(tc, test_writer_format);
	tcase_add_test(tc, test_writer_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sse_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
