/* test-httpc.c - unit tests of lib/httpc.c against a one-shot HTTP server on a loopback port
 * (a thread of this program): status classification (2xx, 401/403, 404, 429 with Retry-After,
 * other 4xx, 5xx, a redirect that is not followed), the answer cap, timeouts, an unreachable
 * port, refused URLs and header lines; base64, base64url and percent-encoding. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "httpc.h"

struct server {
	int fd;             /* listening socket */
	int port;           /* its port */
	const char *answer; /* bytes sent after the request head; NULL: say nothing */
	char head[4096];    /* the request head received */
	pthread_t thread;   /* the server */
};

static void *serve(void *u)
{
	struct server *s = u;
	int c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	size_t n = 0;
	while (n < sizeof(s->head) - 1 && !strstr(s->head, "\r\n\r\n")) {
		ssize_t k = read(c, s->head + n, sizeof(s->head) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		s->head[n] = '\0';
	}
	if (s->answer) {
		ssize_t w = write(c, s->answer, strlen(s->answer));
		(void)w;
	} else {
		sleep(2); /* longer than the client's timeout */
	}
	close(c);
	return NULL;
}

static void start(struct server *s, const char *answer)
{
	memset(s, 0, sizeof(*s));
	s->answer = answer;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(s->fd, 4), 0);
	socklen_t l = sizeof(a);
	getsockname(s->fd, (struct sockaddr *)&a, &l);
	s->port = ntohs(a.sin_port);
	pthread_create(&s->thread, NULL, serve, s);
}

static void stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

/* One GET to a server answering `answer`; returns the status, fills res. */
static enum httpc_status get(const char *answer, size_t max, struct httpc_res *res,
			     struct server *s)
{
	start(s, answer);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/path?q=1", s->port);
	struct httpc_req rq = {
		.url = url,
		.headers = {"Accept: application/json", "Authorization: Bearer secret"},
		.total_timeout_ms = 500,
		.max_body = max};
	enum httpc_status st = httpc_do(&rq, res);
	stop(s);
	return st;
}

/* A whole answer: status line, extra header lines, the body with its length. */
static char *answer(const char *status, const char *extra, const char *body)
{
	static char buf[8192];
	snprintf(buf, sizeof(buf),
		 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nLocation: "
		 "http://127.0.0.1:1/\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		 status, extra, (int)strlen(body), body);
	return buf;
}

START_TEST(test_ok)
{
	struct server s;
	struct httpc_res res;
	ck_assert_int_eq(get(answer("200 OK", "", "{\"a\":1}"), 0, &res, &s), HTTPC_OK);
	ck_assert_int_eq(res.http_status, 200);
	ck_assert_str_eq(res.body, "{\"a\":1}");
	ck_assert_uint_eq(res.body_len, 7);
	ck_assert_ptr_nonnull(strstr(s.head, "GET /path?q=1 HTTP/1.1\r\n"));
	ck_assert_ptr_nonnull(strstr(s.head, "Authorization: Bearer secret\r\n"));
	httpc_res_free(&res);
}
END_TEST

START_TEST(test_classification)
{
	static const struct {
		const char *line;
		enum httpc_status st;
	} cases[] = {
		{"401 Unauthorized", HTTPC_E_AUTH},  {"403 Forbidden", HTTPC_E_AUTH},
		{"404 Not Found", HTTPC_E_NOTFOUND}, {"410 Gone", HTTPC_E_NOTFOUND},
		{"400 Bad Request", HTTPC_E_BADREQ}, {"422 Unprocessable", HTTPC_E_BADREQ},
		{"500 Oops", HTTPC_E_SERVER},        {"503 Busy", HTTPC_E_SERVER},
		{"302 Found", HTTPC_E_PROTOCOL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct server s;
		struct httpc_res res;
		ck_assert_int_eq(get(answer(cases[i].line, "", "{}"), 0, &res, &s), cases[i].st);
		ck_assert_ptr_nonnull(httpc_status_detail(cases[i].st));
		httpc_res_free(&res);
	}
}
END_TEST

START_TEST(test_retry_after)
{
	struct server s;
	struct httpc_res res;
	ck_assert_int_eq(get(answer("429 Slow down", "Retry-After: 7\r\n", "{}"), 0, &res, &s),
			 HTTPC_E_QUOTA);
	ck_assert_int_eq(res.retry_after_s, 7);
	httpc_res_free(&res);
}
END_TEST

START_TEST(test_body_cap)
{
	struct server s;
	struct httpc_res res;
#define BIG "{\"x\":\"0123456789012345678901234567890123456789\"}"
	ck_assert_int_eq(get(answer("200 OK", "", BIG), 16, &res, &s), HTTPC_E_TOOLARGE);
	ck_assert_ptr_null(res.body);
	httpc_res_free(&res);
}
END_TEST

START_TEST(test_timeout_and_unreachable)
{
	struct server s;
	struct httpc_res res;
	ck_assert_int_eq(get(NULL, 0, &res, &s), HTTPC_E_TIMEOUT);
	ck_assert_int_lt(res.total_ms, 1500);
	httpc_res_free(&res);
	/* a port nobody listens on (the one just closed) */
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	struct httpc_req rq = {.url = url, .total_timeout_ms = 500};
	ck_assert_int_eq(httpc_do(&rq, &res), HTTPC_E_UNREACHABLE);
	httpc_res_free(&res);
}
END_TEST

START_TEST(test_refused_requests)
{
	struct httpc_res res;
	struct httpc_req a = {.url = "ftp://127.0.0.1/x"};
	ck_assert_int_eq(httpc_do(&a, &res), HTTPC_E_BADREQ);
	struct httpc_req b = {.url = "http://127.0.0.1/a b"};
	ck_assert_int_eq(httpc_do(&b, &res), HTTPC_E_BADREQ);
	struct httpc_req c = {.url = "http://127.0.0.1:1/", .headers = {"X: a\r\nInjected: b"}};
	ck_assert_int_eq(httpc_do(&c, &res), HTTPC_E_BADREQ);
	httpc_res_free(NULL);
}
END_TEST

START_TEST(test_encodings)
{
	struct arena *a = arena_new(4096);
	ck_assert_str_eq(httpc_urlencode(a, "a b&c=d/é~"), "a%20b%26c%3Dd%2F%C3%A9~");
	ck_assert_str_eq(httpc_b64(a, "any carnal pleas", 16), "YW55IGNhcm5hbCBwbGVhcw==");
	ck_assert_str_eq(httpc_b64url(a, "\xfb\xff", 2), "-_8");
	size_t n = 0;
	unsigned char *d = httpc_b64_decode(a, "YW55IGNh\ncm5hbCBwbGVhcw==\n", 26, &n);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(n, 16);
	ck_assert_str_eq((char *)d, "any carnal pleas");
	d = httpc_b64_decode(a, "-_8", 3, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(d[0], 0xfb);
	ck_assert_ptr_null(httpc_b64_decode(a, "ab!c", 4, &n));
	ck_assert_ptr_null(httpc_b64_decode(a, "a", 1, &n));
	ck_assert_ptr_null(httpc_b64_decode(a, "ab=c", 4, &n));
	arena_free(a);
}
END_TEST

static Suite *httpc_suite(void)
{
	Suite *s = suite_create("httpc");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ok);
	tcase_add_test(tc, test_classification);
	tcase_add_test(tc, test_retry_after);
	tcase_add_test(tc, test_body_cap);
	tcase_add_test(tc, test_timeout_and_unreachable);
	tcase_add_test(tc, test_refused_requests);
	tcase_add_test(tc, test_encodings);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	SRunner *sr = srunner_create(httpc_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
