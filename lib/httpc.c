/* httpc.c - plain HTTP/JSON calls over libcurl (see httpc.h). */
#include "httpc.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "arena.h"
#include "buf.h"

#define HTTPC_CONNECT_DEFAULT_MS 10000
#define HTTPC_TOTAL_DEFAULT_MS 30000

static const char *const httpc_names[HTTPC__MAX] = {
	[HTTPC_OK] = "ok",
	[HTTPC_E_AUTH] = "auth",
	[HTTPC_E_NOTFOUND] = "notfound",
	[HTTPC_E_QUOTA] = "quota",
	[HTTPC_E_BADREQ] = "badreq",
	[HTTPC_E_SERVER] = "server",
	[HTTPC_E_UNREACHABLE] = "unreachable",
	[HTTPC_E_TIMEOUT] = "timeout",
	[HTTPC_E_TOOLARGE] = "toolarge",
	[HTTPC_E_PROTOCOL] = "protocol",
};

static const char *const httpc_details[HTTPC__MAX] = {
	[HTTPC_OK] = "the service answered",
	[HTTPC_E_AUTH] = "the service rejected the credentials or their permissions",
	[HTTPC_E_NOTFOUND] = "the service does not know the requested item",
	[HTTPC_E_QUOTA] = "the service's rate limit was reached; try again later",
	[HTTPC_E_BADREQ] = "the service refused the request",
	[HTTPC_E_SERVER] = "the service failed or is overloaded",
	[HTTPC_E_UNREACHABLE] = "the service could not be reached",
	[HTTPC_E_TIMEOUT] = "the service did not answer in time",
	[HTTPC_E_TOOLARGE] = "the service's answer is larger than allowed",
	[HTTPC_E_PROTOCOL] = "the service's answer could not be understood",
};

const char *httpc_status_str(enum httpc_status s)
{
	return (unsigned)s < HTTPC__MAX ? httpc_names[s] : "?";
}

const char *httpc_status_detail(enum httpc_status s)
{
	return (unsigned)s < HTTPC__MAX ? httpc_details[s] : "the service failed";
}

/* One call's state: the transfer, its header list and the answer so far. Heap-allocated so that
 * a call can outlive the function that started it (httpc_start, run by a multi). */
struct httpc_call {
	CURL *easy;                 /* the transfer */
	struct curl_slist *headers; /* request headers (wiped when freed) */
	struct buf in;              /* the answer so far */
	size_t max_body;            /* cap */
	bool too_large;             /* the cap stopped the transfer */
	int64_t retry_after_s;      /* from the Retry-After header, -1 when none */
	int64_t t0_ms;              /* start (monotonic) */
};

static size_t httpc_on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct httpc_call *c = ud;
	size_t n = size * nmemb;
	if (c->in.len + n > c->max_body) {
		c->too_large = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	buf_append(&c->in, p, n);
	return n;
}

/* Retry-After: delta-seconds only (RFC 9110 section 10.2.3); an HTTP-date is ignored. */
static size_t httpc_on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct httpc_call *c = ud;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";
	if (n > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		size_t i = sizeof(name) - 1;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		int64_t v = 0;
		bool any = false;
		while (i < n && p[i] >= '0' && p[i] <= '9' && v < 86400) {
			v = v * 10 + (p[i++] - '0');
			any = true;
		}
		if (any)
			c->retry_after_s = v > 86400 ? 86400 : v;
	}
	return n;
}

static enum httpc_status httpc_of_status(int hs)
{
	if (hs >= 200 && hs < 300)
		return HTTPC_OK;
	if (hs == 401 || hs == 403)
		return HTTPC_E_AUTH;
	if (hs == 404 || hs == 410)
		return HTTPC_E_NOTFOUND;
	if (hs == 429)
		return HTTPC_E_QUOTA;
	if (hs >= 400 && hs < 500)
		return HTTPC_E_BADREQ;
	if (hs >= 500)
		return HTTPC_E_SERVER;
	return HTTPC_E_PROTOCOL;
}

static enum httpc_status httpc_of_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT: return HTTPC_E_TIMEOUT;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL: return HTTPC_E_BADREQ;
	default: return HTTPC_E_UNREACHABLE;
	}
}

static bool httpc_line_ok(const char *s)
{
	return !strpbrk(s, "\r\n");
}

static bool httpc_url_ok(const char *u)
{
	return u && (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0) &&
	       httpc_line_ok(u) && !strpbrk(u, " \t");
}

static int64_t httpc_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Frees a header list after wiping its lines (some carry credentials). */
static void httpc_wipe_headers(struct curl_slist *h)
{
	for (struct curl_slist *l = h; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(h);
}

/* Frees a call (its transfer, wiped header lines, the answer buffer). Accepts NULL. */
static void httpc_call_free(struct httpc_call *c)
{
	if (!c)
		return;
	if (c->easy)
		curl_easy_cleanup(c->easy);
	httpc_wipe_headers(c->headers);
	buf_free(&c->in);
	free(c);
}

struct httpc_call *httpc_start(const struct httpc_req *rq, enum httpc_status *refused)
{
	struct httpc_call *c = calloc(1, sizeof(*c));
	*refused = HTTPC_E_PROTOCOL;
	if (!c)
		return NULL;
	c->max_body = rq->max_body ? rq->max_body : HTTPC_BODY_MAX_DEFAULT;
	c->retry_after_s = -1;
	c->t0_ms = httpc_mono_ms();
	buf_init(&c->in, NULL);
	*refused = HTTPC_E_BADREQ;
	if (!httpc_url_ok(rq->url))
		goto fail;
	for (size_t i = 0; i < HTTPC_MAX_HEADERS && rq->headers[i]; i++) {
		if (!httpc_line_ok(rq->headers[i]))
			goto fail;
		struct curl_slist *n = curl_slist_append(c->headers, rq->headers[i]);
		if (!n) {
			*refused = HTTPC_E_PROTOCOL;
			goto fail;
		}
		c->headers = n;
	}
	/* libcurl would add "Expect: 100-continue" to larger POSTs: one round trip less */
	struct curl_slist *n = curl_slist_append(c->headers, "Expect:");
	if (n)
		c->headers = n;
	CURL *e = c->easy = curl_easy_init();
	if (!e) {
		*refused = HTTPC_E_PROTOCOL;
		goto fail;
	}
	const char *method = rq->method ? rq->method : "GET";
	int64_t cms =
		rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : HTTPC_CONNECT_DEFAULT_MS;
	int64_t tms = rq->total_timeout_ms > 0 ? rq->total_timeout_ms : HTTPC_TOTAL_DEFAULT_MS;
	bool bad = false;
	bad |= curl_easy_setopt(e, CURLOPT_URL, rq->url) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cms) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)tms) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpc_on_write) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)c) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, httpc_on_header) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)c) != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "ideaforge-httpc/1") != CURLE_OK;
	bad |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK;
	if (rq->body) {
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body) != CURLE_OK;
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len) !=
		       CURLE_OK;
	}
	if (strcmp(method, "GET") != 0 && !(rq->body && strcmp(method, "POST") == 0))
		bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
	if (bad)
		goto fail;
	*refused = HTTPC_OK;
	return c;
fail:
	httpc_call_free(c);
	return NULL;
}

CURL *httpc_easy(struct httpc_call *c)
{
	return c->easy;
}

enum httpc_status httpc_finish(struct httpc_call *c, CURLcode cc, struct httpc_res *out)
{
	memset(out, 0, sizeof(*out));
	long hs = 0;
	if (curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &hs) == CURLE_OK)
		out->http_status = (int)hs;
	if (c->too_large)
		out->status = HTTPC_E_TOOLARGE;
	else if (cc != CURLE_OK)
		out->status = httpc_of_curl(cc);
	else
		out->status = httpc_of_status((int)hs);
	out->retry_after_s = c->retry_after_s;
	if (c->in.len && !c->too_large) {
		out->body = malloc(c->in.len + 1);
		if (out->body) {
			memcpy(out->body, c->in.p, c->in.len);
			out->body[c->in.len] = '\0';
			out->body_len = c->in.len;
		}
	}
	out->total_ms = httpc_mono_ms() - c->t0_ms;
	httpc_call_free(c);
	return out->status;
}

void httpc_abort(struct httpc_call *c)
{
	httpc_call_free(c);
}

enum httpc_status httpc_do(const struct httpc_req *rq, struct httpc_res *out)
{
	int64_t t0 = httpc_mono_ms();
	enum httpc_status refused;
	struct httpc_call *c = httpc_start(rq, &refused);
	if (!c) {
		memset(out, 0, sizeof(*out));
		out->retry_after_s = -1;
		out->status = refused;
		out->total_ms = httpc_mono_ms() - t0;
		return out->status;
	}
	CURLcode cc = curl_easy_perform(c->easy);
	return httpc_finish(c, cc, out);
}

void httpc_res_free(struct httpc_res *out)
{
	if (!out)
		return;
	free(out->body);
	out->body = NULL;
	out->body_len = 0;
}

char *httpc_urlencode(struct arena *a, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = s ? strlen(s) : 0;
	char *o = arena_alloc(a, 3 * n + 1), *p = o;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return o;
}

static char *httpc_b64_enc(struct arena *a, const unsigned char *s, size_t n, const char *alpha,
			   bool pad)
{
	char *o = arena_alloc(a, 4 * ((n + 2) / 3) + 1), *p = o;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*p++ = alpha[v >> 18 & 63];
		*p++ = alpha[v >> 12 & 63];
		*p++ = alpha[v >> 6 & 63];
		*p++ = alpha[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		*p++ = alpha[v >> 18 & 63];
		*p++ = alpha[v >> 12 & 63];
		if (i + 1 < n)
			*p++ = alpha[v >> 6 & 63];
		else if (pad)
			*p++ = '=';
		if (pad)
			*p++ = '=';
	}
	*p = '\0';
	return o;
}

char *httpc_b64url(struct arena *a, const void *p, size_t n)
{
	return httpc_b64_enc(
		a, p, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false);
}

char *httpc_b64(struct arena *a, const void *p, size_t n)
{
	return httpc_b64_enc(
		a, p, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true);
}

static int httpc_b64_val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

unsigned char *httpc_b64_decode(struct arena *a, const char *s, size_t len, size_t *n)
{
	unsigned char *o = arena_alloc(a, len / 4 * 3 + 4), *p = o;
	uint32_t acc = 0;
	int bits = 0;
	bool padding = false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		if (ch == '=') {
			padding = true;
			continue;
		}
		int v = httpc_b64_val(ch);
		if (v < 0 || padding)
			return NULL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*p++ = (unsigned char)(acc >> bits & 0xff);
		}
	}
	if (bits >= 6) /* a lone sextet cannot end valid base64 */
		return NULL;
	*p = '\0';
	*n = (size_t)(p - o);
	return o;
}
