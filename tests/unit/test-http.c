/* test-http.c - unit tests of lib/http.c without a FastCGI server: a request is a plain envp
 * array (FCGX_GetParam reads "NAME=value" strings) plus in-memory FCGX_Streams, whose buffer
 * procedures feed the body in small pieces and collect the response. Covers query and cookie
 * parsing, path parameters, the caps of http_read (header count, Content-Length, method), the
 * body contract of http_read_body (413, 415, 400, 422, optional bodies) and what http_finish
 * writes (status line, JSON detail, fixed 5xx text, Retry-After, HEAD without a body). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "http.h"
#include "jx.h"
#include "log.h"
#include "srv.h"

/* ------------------------------------------------------------------ fake FastCGI streams */

struct src {
	const char *p;           /* body bytes */
	size_t len;              /* total */
	size_t off;              /* delivered so far */
	size_t piece;            /* bytes per fill */
	unsigned char win[4096]; /* current window */
};

static void src_fill(FCGX_Stream *s)
{
	struct src *src = s->data;
	size_t n = src->len - src->off;
	if (n == 0) {
		s->isClosed = 1;
		return;
	}
	if (n > src->piece)
		n = src->piece;
	if (n > sizeof(src->win))
		n = sizeof(src->win);
	memcpy(src->win, src->p + src->off, n);
	src->off += n;
	s->rdNext = s->stopUnget = src->win;
	s->stop = src->win + n;
}

struct sink {
	struct buf out;        /* everything written */
	unsigned char win[64]; /* small window: forces many empty calls */
};

static void sink_empty(FCGX_Stream *s, int doClose)
{
	(void)doClose;
	struct sink *k = s->data;
	buf_append(&k->out, k->win, (size_t)(s->wrNext - k->win));
	s->wrNext = k->win;
}

/* ------------------------------------------------------------------ a request */

struct fake {
	struct srv_config cfg;
	struct wctx w;
	FCGX_Request fr;
	FCGX_Stream in, out;
	struct src src;
	struct sink sink;
	char *env[300];
	int nenv;
	struct req r;
	struct route route;
};

static struct fake *F;
static struct arena *A;

static void setup(void)
{
	A = arena_new(8192);
	F = calloc(1, sizeof(*F));
	F->cfg.max_headers = 10;
	F->cfg.max_body_bytes = 1000;
	F->cfg.max_json_depth = 4;
	F->cfg.max_json_nodes = 64;
	F->w.cfg = &F->cfg;
	F->fr.envp = F->env;
	F->fr.in = &F->in;
	F->fr.out = &F->out;
	F->in.isReader = 1;
	F->in.fillBuffProc = src_fill;
	F->in.data = &F->src;
	F->src.piece = 7;
	F->in.rdNext = F->in.stop = F->in.stopUnget = F->src.win;
	F->out.isReader = 0;
	F->out.emptyBuffProc = sink_empty;
	F->out.data = &F->sink;
	F->out.wrNext = F->sink.win;
	F->out.stop = F->sink.win + sizeof(F->sink.win);
	F->out.rdNext = F->out.stop;
	buf_init(&F->sink.out, NULL);
	F->r.w = &F->w;
	F->r.fcgx = &F->fr;
	F->r.a = A;
	buf_init(&F->r.out, A);
	F->route.method = HM_POST;
	F->route.pattern = "/x";
	F->route.flags = ROUTE_JSON;
	F->r.route = &F->route;
	log_set_level(LL__MAX); /* keep the test output clean */
}

static void teardown(void)
{
	for (int i = 0; i < F->nenv; i++)
		free(F->env[i]);
	if (F->r.detail_list)
		json_object_put(F->r.detail_list);
	buf_free(&F->sink.out);
	free(F);
	arena_free(A);
}

static void env(const char *name, const char *value)
{
	ck_assert_int_lt(F->nenv, 298);
	if (asprintf(&F->env[F->nenv], "%s=%s", name, value) < 0)
		abort();
	F->nenv++;
	F->env[F->nenv] = NULL;
}

static void body(const char *b, size_t len)
{
	F->src.p = b;
	F->src.len = len;
	F->src.off = 0;
}

/* A POST with a body and its content type, through http_read. */
static int post(const char *ctype, const char *b)
{
	char cl[32];
	env("REQUEST_METHOD", "POST");
	env("REQUEST_URI", "/x");
	if (ctype)
		env("CONTENT_TYPE", ctype);
	snprintf(cl, sizeof(cl), "%zu", strlen(b));
	env("CONTENT_LENGTH", cl);
	body(b, strlen(b));
	return http_read(&F->r);
}

/* The response as written to the FastCGI output stream. */
static const char *response(void)
{
	sink_empty(&F->out, 0);
	return F->sink.out.p ? F->sink.out.p : "";
}

static const char *body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");
	ck_assert_ptr_nonnull(b);
	return b + 4;
}

/* ------------------------------------------------------------------ accessors */

START_TEST(test_query)
{
	F->r.query = "a=1&b=x+y&c=%41%42&d&e=&a=2&bad=%zz&%66=enc&g=a%3Db%26c";
	ck_assert_str_eq(req_query(&F->r, "a"), "1"); /* the first of several */
	ck_assert_str_eq(req_query(&F->r, "b"), "x y");
	ck_assert_str_eq(req_query(&F->r, "c"), "AB");
	ck_assert_str_eq(req_query(&F->r, "d"), "");
	ck_assert_str_eq(req_query(&F->r, "e"), "");
	ck_assert_str_eq(req_query(&F->r, "f"), "enc"); /* encoded key */
	ck_assert_str_eq(req_query(&F->r, "g"), "a=b&c");
	ck_assert_ptr_null(req_query(&F->r, "bad")); /* broken encoding: as if absent */
	ck_assert_ptr_null(req_query(&F->r, "zz"));
	ck_assert_ptr_null(req_query(&F->r, "")); /* no key is empty here */
	F->r.query = "";
	ck_assert_ptr_null(req_query(&F->r, "a"));
	F->r.query = "&&a=3&";
	ck_assert_str_eq(req_query(&F->r, "a"), "3");
}
END_TEST

START_TEST(test_cookie)
{
	env("HTTP_COOKIE", "theme=dark; session_token_old=old; session_token=abc.def-1;"
			   "quoted=\"v w\";  empty=; xid=7");
	ck_assert_str_eq(req_cookie(&F->r, "session_token"), "abc.def-1");
	ck_assert_str_eq(req_cookie(&F->r, "theme"), "dark");
	ck_assert_str_eq(req_cookie(&F->r, "quoted"), "v w");
	ck_assert_str_eq(req_cookie(&F->r, "empty"), "");
	ck_assert_str_eq(req_cookie(&F->r, "xid"), "7");
	ck_assert_ptr_null(req_cookie(&F->r, "id")); /* suffix of another name */
	ck_assert_ptr_null(req_cookie(&F->r, "session"));
	ck_assert_ptr_null(req_cookie(&F->r, "nope"));
}
END_TEST

START_TEST(test_no_cookie_header)
{
	ck_assert_ptr_null(req_cookie(&F->r, "session_token"));
	ck_assert_ptr_null(req_env(&F->r, "HTTP_COOKIE"));
}
END_TEST

START_TEST(test_param)
{
	struct route_match *m = &F->r.m;
	m->nparams = 2;
	m->names[0] = "id}/x/{share_id}";
	m->name_lens[0] = 2;
	m->names[1] = "share_id}";
	m->name_lens[1] = 8;
	m->values[0] = "p1";
	m->values[1] = "s1";
	ck_assert_str_eq(req_param(&F->r, "id"), "p1");
	ck_assert_str_eq(req_param(&F->r, "share_id"), "s1");
	ck_assert_ptr_null(req_param(&F->r, "i"));
	ck_assert_ptr_null(req_param(&F->r, "share"));
}
END_TEST

/* ------------------------------------------------------------------ http_read */

START_TEST(test_read_basics)
{
	env("REQUEST_METHOD", "GET");
	env("REQUEST_URI", "/api/products?limit=5&x=%20");
	env("QUERY_STRING", "limit=5&x=%20");
	env("REMOTE_ADDR", "10.1.2.3");
	env("HTTPS", "on");
	env("HTTP_X_REQUEST_ID", "abc-123_x.y");
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	ck_assert_int_eq(F->r.method, HM_GET);
	ck_assert_str_eq(F->r.method_str, "GET");
	ck_assert_str_eq(F->r.path, "/api/products");
	ck_assert_str_eq(F->r.query, "limit=5&x=%20");
	ck_assert_str_eq(req_query(&F->r, "limit"), "5");
	ck_assert_str_eq(req_query(&F->r, "x"), " ");
	ck_assert_str_eq(F->r.remote_addr, "10.1.2.3");
	ck_assert(F->r.https);
	ck_assert_str_eq(F->r.rid, "abc-123_x.y");
	ck_assert_uint_eq(F->r.body_len, 0);
}
END_TEST

START_TEST(test_read_request_id_sanitised)
{
	/* a request id that could forge log fields is replaced by one of ours */
	env("REQUEST_METHOD", "GET");
	env("REQUEST_URI", "/");
	env("HTTP_X_REQUEST_ID", "x status=200 \"injected\"");
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	ck_assert_str_ne(F->r.rid, "x status=200 \"injected\"");
	ck_assert_uint_gt(strlen(F->r.rid), 0);
	ck_assert_ptr_null(strchr(F->r.rid, ' '));
	ck_assert_ptr_null(strchr(F->r.rid, '"'));
}
END_TEST

START_TEST(test_read_request_id_generated_unique)
{
	env("REQUEST_METHOD", "GET");
	env("REQUEST_URI", "/");
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	char first[40];
	snprintf(first, sizeof(first), "%s", F->r.rid);
	ck_assert_uint_gt(strlen(first), 0);
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	ck_assert_str_ne(first, F->r.rid);
}
END_TEST

START_TEST(test_read_https_off)
{
	env("REQUEST_METHOD", "GET");
	env("REQUEST_URI", "/");
	env("HTTPS", "off");
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	ck_assert(!F->r.https);
}
END_TEST

START_TEST(test_read_header_cap)
{
	char name[32];
	env("REQUEST_METHOD", "GET");
	env("REQUEST_URI", "/");
	/* exactly max_headers: fine */
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "HTTP_X_H%d", i);
		env(name, "v");
	}
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	/* one more: refused before anything else is looked at */
	env("HTTP_X_ONE_MORE", "v");
	ck_assert_int_eq(http_read(&F->r), RC_BADREQ);
	ck_assert_int_eq(F->r.rc, RC_BADREQ);
	ck_assert_msg(strstr(F->r.detail, "header") != NULL, "%s", F->r.detail);
}
END_TEST

START_TEST(test_read_content_length_cap)
{
	env("REQUEST_METHOD", "POST");
	env("REQUEST_URI", "/x");
	env("CONTENT_LENGTH", "1001");
	ck_assert_int_eq(http_read(&F->r), RC_TOOLARGE);
	ck_assert_msg(strstr(F->r.detail, "1000") != NULL, "%s", F->r.detail);
	ck_assert_int_eq(rc_http_status(F->r.rc), 413);
}
END_TEST

START_TEST(test_read_content_length_at_cap)
{
	env("REQUEST_METHOD", "POST");
	env("REQUEST_URI", "/x");
	env("CONTENT_LENGTH", "1000");
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	ck_assert_uint_eq(F->r.body_len, 1000);
}
END_TEST

START_TEST(test_read_content_length_invalid)
{
	static const char *const bad[] = {"12x", "-1", "abc", "1e3"};
	for (size_t i = 0; i < 4; i++) {
		teardown();
		setup();
		env("REQUEST_METHOD", "POST");
		env("REQUEST_URI", "/x");
		env("CONTENT_LENGTH", bad[i]);
		ck_assert_msg(http_read(&F->r) == RC_BADREQ, "Content-Length %s accepted", bad[i]);
	}
}
END_TEST

START_TEST(test_read_unknown_method)
{
	env("REQUEST_METHOD", "BREW");
	env("REQUEST_URI", "/");
	ck_assert_int_eq(http_read(&F->r), RC_METHOD);
	ck_assert_str_eq(F->r.method_str, "BREW");
}
END_TEST

/* ------------------------------------------------------------------ http_read_body */

START_TEST(test_body_json_ok)
{
	const char *b =
		"{\"email\":\"a@b.co\",\"n\":[1,2,3],\"long\":\"0123456789012345678901234567890123456789\"}";
	ck_assert_int_eq(post("application/json", b), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_OK);
	ck_assert_uint_eq(F->r.body_len, strlen(b));
	ck_assert_str_eq(F->r.body, b);
	ck_assert_ptr_nonnull(F->r.json);
	ck_assert_str_eq(jx_get_str(F->r.json, "email"), "a@b.co");
	arena_reset(A); /* releases the parsed body (leak-checked under ASan) */
}
END_TEST

START_TEST(test_body_json_charset)
{
	ck_assert_int_eq(post("Application/JSON; charset=utf-8", "{}"), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_OK);
	ck_assert_ptr_nonnull(F->r.json);
}
END_TEST

START_TEST(test_body_wrong_content_type)
{
	static const char *const types[] = {"text/plain", "application/jsonp",
					    "application/x-www-form-urlencoded", NULL};
	for (size_t i = 0; i < 4; i++) {
		teardown();
		setup();
		ck_assert_int_eq(post(types[i], "{\"a\":1}"), RC_OK);
		ck_assert_msg(http_read_body(&F->r) == RC_MEDIA, "content type %s accepted",
			      types[i] ? types[i] : "(none)");
		ck_assert_int_eq(rc_http_status(F->r.rc), 415);
	}
}
END_TEST

START_TEST(test_body_malformed)
{
	ck_assert_int_eq(post("application/json", "{\"a\":"), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_BADREQ);
	ck_assert_ptr_null(F->r.json);
}
END_TEST

START_TEST(test_body_too_deep)
{
	/* max_json_depth = 4 in this fake config; the innermost scalar is a level (see test-jx) */
	ck_assert_int_eq(post("application/json", "{\"a\":[[1]]}"), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_OK);
	arena_reset(A);
	teardown();
	setup();
	ck_assert_int_eq(post("application/json", "{\"a\":[[[1]]]}"), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_BADREQ);
}
END_TEST

START_TEST(test_body_too_many_values)
{
	/* max_json_nodes = 64 in this fake config: counted before json-c builds anything */
	char body[400];
	size_t n = 0;
	n += (size_t)snprintf(body + n, sizeof(body) - n, "[");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, i ? ",1" : "1");
	snprintf(body + n, sizeof(body) - n, "]");
	ck_assert_int_eq(post("application/json", body), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_TOOLARGE);
	ck_assert_str_eq(F->r.detail, "JSON body has too many values (limit 64)");
	ck_assert_ptr_null(F->r.json);
}
END_TEST

START_TEST(test_route_body_cap)
{
	/* the route's own cap, below the server's max_body_bytes (1000 here) */
	F->route.max_body = 8;
	ck_assert_int_eq(post("application/json", "{\"a\":12345}"), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_TOOLARGE);
	ck_assert_str_eq(F->r.detail, "Request body too large (limit 8 bytes)");
	ck_assert_ptr_null(F->r.body); /* refused before a byte was read */
	arena_reset(A);
	teardown();
	setup();
	F->route.max_body = 8;
	ck_assert_int_eq(post("application/json", "{\"a\":1}"), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_OK);
}
END_TEST

START_TEST(test_body_empty)
{
	ck_assert_int_eq(post("application/json", "  \n"), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_INVALID);
	ck_assert_ptr_nonnull(F->r.detail_list);
	ck_assert_str_eq(jx_str(F->r.detail_list, NULL),
			 "[{\"type\":\"missing\",\"loc\":[\"body\"],\"msg\":\"Field required\"}]");
}
END_TEST

START_TEST(test_body_empty_optional)
{
	F->route.flags |= ROUTE_OPTBODY;
	ck_assert_int_eq(post(NULL, ""), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_OK);
	ck_assert_ptr_null(F->r.json);
}
END_TEST

static const struct jx_field login_fields[] = {
	{"email", JX_EMAIL, JX_REQUIRED, 0, NULL},
	{"password", JX_STR, JX_REQUIRED, 128, NULL},
	{NULL, 0, 0, 0, NULL},
};

START_TEST(test_body_validation_422)
{
	F->route.body = login_fields;
	F->route.flags |= ROUTE_STRICT;
	ck_assert_int_eq(post("application/json", "{\"email\":\"x\",\"admin\":true}"), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_INVALID);
	ck_assert_str_eq(jx_str(F->r.detail_list, NULL),
			 "[{\"type\":\"value_error\",\"loc\":[\"body\",\"email\"],"
			 "\"msg\":\"value is not a valid email address\"},"
			 "{\"type\":\"missing\",\"loc\":[\"body\",\"password\"],"
			 "\"msg\":\"Field required\"},"
			 "{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"admin\"],"
			 "\"msg\":\"Extra inputs are not permitted\"}]");
	/* and the response is the FastAPI shape */
	http_finish(&F->r, RC_INVALID);
	const char *resp = response();
	ck_assert_msg(strncmp(resp, "Status: 422 ", 12) == 0, "%s", resp);
	ck_assert_msg(strncmp(body_of(resp), "{\"detail\":[{\"type\":\"value_error\"", 32) == 0,
		      "%s", resp);
	arena_reset(A);
}
END_TEST

START_TEST(test_body_short_read)
{
	/* Content-Length promises more than the stream delivers */
	env("REQUEST_METHOD", "POST");
	env("REQUEST_URI", "/x");
	env("CONTENT_TYPE", "application/json");
	env("CONTENT_LENGTH", "50");
	body("{\"a\":1}", 7);
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_BADREQ);
}
END_TEST

START_TEST(test_body_without_length_capped)
{
	/* no CONTENT_LENGTH: the body is read up to the cap, not beyond */
	F->route.flags = ROUTE_RAW;
	char *big = malloc(5000);
	memset(big, 'x', 5000);
	env("REQUEST_METHOD", "POST");
	env("REQUEST_URI", "/x");
	body(big, 5000);
	F->src.piece = 4096;
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_TOOLARGE);
	free(big);
}
END_TEST

START_TEST(test_body_raw_binary)
{
	F->route.flags = ROUTE_RAW;
	static const char bin[] = "a\0b\xff\x01";
	env("REQUEST_METHOD", "POST");
	env("REQUEST_URI", "/x");
	env("CONTENT_TYPE", "application/octet-stream");
	env("CONTENT_LENGTH", "5");
	body(bin, 5);
	ck_assert_int_eq(http_read(&F->r), RC_OK);
	ck_assert_int_eq(http_read_body(&F->r), RC_OK);
	ck_assert_uint_eq(F->r.body_len, 5);
	ck_assert_mem_eq(F->r.body, bin, 5);
	ck_assert_ptr_null(F->r.json);
}
END_TEST

/* ------------------------------------------------------------------ http_finish */

START_TEST(test_finish_json_response)
{
	F->r.method = HM_GET;
	res_header(&F->r, "X-Extra", "1");
	res_json_text(&F->r, 201, "{\"ok\":true}", 11);
	http_finish(&F->r, RC_OK);
	const char *resp = response();
	ck_assert_msg(strstr(resp, "Status: 201 Created\r\n") == resp, "%s", resp);
	ck_assert_msg(strstr(resp, "Content-Type: application/json\r\n") != NULL, "%s", resp);
	ck_assert_msg(strstr(resp, "Content-Length: 11\r\n") != NULL, "%s", resp);
	ck_assert_msg(strstr(resp, "X-Extra: 1\r\n") != NULL, "%s", resp);
	ck_assert_str_eq(body_of(resp), "{\"ok\":true}");
}
END_TEST

START_TEST(test_finish_head_has_no_body)
{
	F->r.method = HM_HEAD;
	res_json_text(&F->r, 200, "{\"ok\":true}", 11);
	http_finish(&F->r, RC_OK);
	const char *resp = response();
	ck_assert_msg(strstr(resp, "Content-Length: 11\r\n") != NULL, "%s", resp);
	ck_assert_str_eq(body_of(resp), "");
}
END_TEST

START_TEST(test_finish_error_detail)
{
	req_fail(&F->r, RC_NOTFOUND, "Product %s not found", "\"x\"\n");
	http_finish(&F->r, RC_NOTFOUND);
	const char *resp = response();
	ck_assert_msg(strncmp(resp, "Status: 404 Not Found\r\n", 23) == 0, "%s", resp);
	ck_assert_msg(strstr(resp, "Content-Type: application/json\r\n") != NULL, "%s", resp);
	/* the detail is escaped into valid JSON */
	ck_assert_str_eq(body_of(resp), "{\"detail\":\"Product \\\"x\\\"\\n not found\"}");
}
END_TEST

START_TEST(test_finish_default_detail)
{
	http_finish(&F->r, RC_FORBIDDEN);
	ck_assert_str_eq(body_of(response()), "{\"detail\":\"Forbidden\"}");
}
END_TEST

START_TEST(test_finish_internal_hidden)
{
	req_fail(&F->r, RC_INTERNAL, "sql error 42P01: relation \"users\" does not exist");
	http_finish(&F->r, RC_INTERNAL);
	const char *resp = response();
	ck_assert_msg(strncmp(resp, "Status: 500 ", 12) == 0, "%s", resp);
	ck_assert_str_eq(body_of(resp), "{\"detail\":\"Internal server error\"}");
	ck_assert_ptr_null(strstr(resp, "relation"));
}
END_TEST

START_TEST(test_finish_unavailable_retry_after)
{
	req_fail(&F->r, RC_UNAVAILABLE, "Database unavailable");
	http_finish(&F->r, RC_UNAVAILABLE);
	const char *resp = response();
	ck_assert_msg(strncmp(resp, "Status: 503 ", 12) == 0, "%s", resp);
	ck_assert_msg(strstr(resp, "Retry-After: 1\r\n") != NULL, "%s", resp);
	ck_assert_str_eq(body_of(resp), "{\"detail\":\"Database unavailable\"}");
}
END_TEST

START_TEST(test_finish_unavailable_other_hidden)
{
	req_fail(&F->r, RC_UNAVAILABLE, "redis at 10.0.0.5:6379 refused");
	res_header(&F->r, "Retry-After", "30");
	http_finish(&F->r, RC_UNAVAILABLE);
	const char *resp = response();
	ck_assert_str_eq(body_of(resp), "{\"detail\":\"Service temporarily unavailable\"}");
	/* the handler's own Retry-After is kept, not doubled */
	ck_assert_msg(strstr(resp, "Retry-After: 30\r\n") != NULL, "%s", resp);
	ck_assert_msg(strstr(resp, "Retry-After: 1\r\n") == NULL, "%s", resp);
}
END_TEST

START_TEST(test_finish_ok_without_response_is_500)
{
	http_finish(&F->r, RC_OK);
	const char *resp = response();
	ck_assert_msg(strncmp(resp, "Status: 500 ", 12) == 0, "%s", resp);
	ck_assert_str_eq(body_of(resp), "{\"detail\":\"Internal server error\"}");
}
END_TEST

START_TEST(test_header_injection_dropped)
{
	res_header(&F->r, "X-Evil", "a\r\nSet-Cookie: x=1");
	res_header(&F->r, "X-Evil2\r\nSet-Cookie", "1");
	res_header(&F->r, "X-Good", "fine");
	res_json_text(&F->r, 200, "{}", 2);
	http_finish(&F->r, RC_OK);
	const char *resp = response();
	ck_assert_ptr_null(strstr(resp, "Set-Cookie"));
	ck_assert_ptr_null(strstr(resp, "X-Evil"));
	ck_assert_ptr_nonnull(strstr(resp, "X-Good: fine\r\n"));
}
END_TEST

START_TEST(test_res_json_consumes)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string("/a/b"));
	res_json(&F->r, 200, o); /* o is consumed: a leak or double free shows under ASan */
	http_finish(&F->r, RC_OK);
	ck_assert_str_eq(body_of(response()), "{\"path\":\"/a/b\"}");
}
END_TEST

START_TEST(test_stream)
{
	ck_assert_int_eq(res_stream_begin(&F->r, 200, "text/event-stream"), 0);
	ck_assert_int_eq(res_write(&F->r, "data: 1\n\n", 9), 0);
	ck_assert_int_eq(res_write(&F->r, "data: 2\n\n", 9), 0);
	http_finish(&F->r, RC_OK); /* nothing more after a stream */
	const char *resp = response();
	ck_assert_msg(strncmp(resp, "Status: 200 OK\r\nContent-Type: text/event-stream\r\n", 48) ==
			      0,
		      "%s", resp);
	ck_assert_ptr_null(strstr(resp, "Content-Length"));
	ck_assert_str_eq(body_of(resp), "data: 1\n\ndata: 2\n\n");
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_query);
	tcase_add_test(tc, test_cookie);
	tcase_add_test(tc, test_no_cookie_header);
	tcase_add_test(tc, test_param);
	tcase_add_test(tc, test_read_basics);
	tcase_add_test(tc, test_read_request_id_sanitised);
	tcase_add_test(tc, test_read_request_id_generated_unique);
	tcase_add_test(tc, test_read_https_off);
	tcase_add_test(tc, test_read_header_cap);
	tcase_add_test(tc, test_read_content_length_cap);
	tcase_add_test(tc, test_read_content_length_at_cap);
	tcase_add_test(tc, test_read_content_length_invalid);
	tcase_add_test(tc, test_read_unknown_method);
	tcase_add_test(tc, test_body_json_ok);
	tcase_add_test(tc, test_body_json_charset);
	tcase_add_test(tc, test_body_wrong_content_type);
	tcase_add_test(tc, test_body_malformed);
	tcase_add_test(tc, test_body_too_deep);
	tcase_add_test(tc, test_body_too_many_values);
	tcase_add_test(tc, test_route_body_cap);
	tcase_add_test(tc, test_body_empty);
	tcase_add_test(tc, test_body_empty_optional);
	tcase_add_test(tc, test_body_validation_422);
	tcase_add_test(tc, test_body_short_read);
	tcase_add_test(tc, test_body_without_length_capped);
	tcase_add_test(tc, test_body_raw_binary);
	tcase_add_test(tc, test_finish_json_response);
	tcase_add_test(tc, test_finish_head_has_no_body);
	tcase_add_test(tc, test_finish_error_detail);
	tcase_add_test(tc, test_finish_default_detail);
	tcase_add_test(tc, test_finish_internal_hidden);
	tcase_add_test(tc, test_finish_unavailable_retry_after);
	tcase_add_test(tc, test_finish_unavailable_other_hidden);
	tcase_add_test(tc, test_finish_ok_without_response_is_500);
	tcase_add_test(tc, test_header_injection_dropped);
	tcase_add_test(tc, test_res_json_consumes);
	tcase_add_test(tc, test_stream);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
