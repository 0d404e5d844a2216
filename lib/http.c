/* http.c - request input with caps and response output, over libfcgi (FastCGI 1.0 Responder).
 *
 * Limits applied here: header count (max_headers), body size (max_body_bytes, checked against
 * CONTENT_LENGTH before reading a byte and again while reading), JSON depth (max_json_depth).
 */
#include "http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "arena.h"
#include "jx.h"
#include "log.h"
#include "srv.h"

const char *req_env(struct req *r, const char *name)
{
	return FCGX_GetParam(name, r->fcgx->envp);
}

const char *req_param(struct req *r, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < r->m.nparams; i++)
		if (r->m.name_lens[i] == n && memcmp(r->m.names[i], name, n) == 0)
			return r->m.values[i];
	return NULL;
}

const char *req_query(struct req *r, const char *name)
{
	size_t n = strlen(name);
	const char *q = r->query;
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		char *key = url_decode(r->a, q, klen, 1);
		if (key && strlen(key) == n && memcmp(key, name, n) == 0) {
			if (!eq)
				return "";
			return url_decode(r->a, eq + 1, len - klen - 1, 1);
		}
		q = amp ? amp + 1 : NULL;
	}
	return NULL;
}

const char *req_cookie(struct req *r, const char *name)
{
	const char *c = req_env(r, "HTTP_COOKIE");
	size_t n = strlen(name);
	while (c && *c) {
		while (*c == ' ' || *c == ';')
			c++;
		const char *end = strchr(c, ';');
		size_t len = end ? (size_t)(end - c) : strlen(c);
		if (len > n && c[n] == '=' && memcmp(c, name, n) == 0) {
			const char *v = c + n + 1;
			size_t vl = len - n - 1;
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v++;
				vl -= 2;
			}
			return arena_strndup(r->a, v, vl);
		}
		c = end;
	}
	return NULL;
}

void res_header(struct req *r, const char *name, const char *value)
{
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
		log_msg(LL_WARN, r->rid, "dropped response header %s with a line break", name);
		return;
	}
	struct hdr *h = arena_alloc(r->a, sizeof(*h));
	h->name = arena_strdup(r->a, name);
	h->value = arena_strdup(r->a, value);
	h->next = NULL;
	struct hdr **pp = &r->hdrs;
	while (*pp)
		pp = &(*pp)->next;
	*pp = h;
}

int res_json(struct req *r, int status, struct json_object *o)
{
	size_t len = 0;
	const char *s = jx_str(o, &len);
	buf_reset(&r->out);
	buf_append(&r->out, s, len);
	json_object_put(o);
	r->status = status;
	r->ctype = "application/json";
	return RC_OK;
}

int res_json_text(struct req *r, int status, const char *json, size_t len)
{
	buf_reset(&r->out);
	buf_append(&r->out, json, len);
	r->status = status;
	r->ctype = "application/json";
	return RC_OK;
}

int res_json_str(struct req *r, const char *json)
{
	return res_json_text(r, 200, json, strlen(json));
}

int res_json_or(struct req *r, const char *json, enum rc rc, const char *detail)
{
	if (json)
		return res_json_str(r, json);
	if (r->rc != RC_OK)
		return r->rc;
	return req_fail(r, rc, "%s", detail);
}

int res_body(struct req *r, int status, const char *ctype, const char *body, size_t len)
{
	buf_reset(&r->out);
	buf_append(&r->out, body, len);
	r->status = status;
	r->ctype = arena_strdup(r->a, ctype);
	return RC_OK;
}

int req_fail(struct req *r, enum rc rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ctx_vfail(&r->c, rc, fmt, ap);
	va_end(ap);
	return rc;
}

int req_fail_list(struct req *r, struct json_object *list)
{
	if (r->detail_list)
		json_object_put(r->detail_list);
	r->detail_list = list;
	r->rc = RC_INVALID;
	return RC_INVALID;
}

int req_fail_field(struct req *r, const char *where, const char *name, const char *type,
		   const char *msg)
{
	struct json_object *l = json_object_new_array();
	json_object_array_add(l, jx_error_item(where, name, type, msg));
	return req_fail_list(r, l);
}

/* Accepts an incoming request id when it is short and made of safe characters. */
static bool rid_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= 40)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static void rid_make(char *out, size_t cap)
{
	static _Atomic unsigned long seq;
	unsigned long n = ++seq;
	snprintf(out, cap, "%x-%lx-%lx", (unsigned)getpid(), (unsigned long)(now_us() & 0xffffff),
		 n);
}

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		unsigned min;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		unsigned cp = c & (0x7fu >> len);
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* Every key and value of the query string decodes (percent-encoding intact, no NUL) to UTF-8:
 * a parameter that does not is refused here, never read as absent by req_query (issue 14). */
static bool query_ok(struct req *r)
{
	const char *q = r->query;
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		const char *k = url_decode(r->a, q, klen, 1);
		const char *v = eq ? url_decode(r->a, eq + 1, len - klen - 1, 1) : "";
		if (!k || !v || !utf8_valid((const unsigned char *)k, strlen(k)) ||
		    !utf8_valid((const unsigned char *)v, strlen(v)))
			return false;
		q = amp ? amp + 1 : NULL;
	}
	return true;
}

int http_read(struct req *r)
{
	const struct srv_config *cfg = r->w->cfg;
	int nhdr = 0;
	for (char **e = r->fcgx->envp; e && *e; e++)
		if (strncmp(*e, "HTTP_", 5) == 0)
			nhdr++;

	const char *rid = req_env(r, "HTTP_X_REQUEST_ID");
	if (rid && rid_ok(rid))
		snprintf(r->rid, sizeof(r->rid), "%s", rid);
	else
		rid_make(r->rid, sizeof(r->rid));

	r->method_str = req_env(r, "REQUEST_METHOD");
	r->method = http_method_parse(r->method_str);
	r->method_str = r->method_str ? arena_strdup(r->a, r->method_str) : "-";
	const char *uri = req_env(r, "REQUEST_URI");
	if (!uri)
		uri = req_env(r, "DOCUMENT_URI");
	if (!uri)
		uri = "/";
	const char *qm = strchr(uri, '?');
	/* copies: the params are freed by FCGX_Finish_r, before the access line is written */
	r->path = qm ? arena_strndup(r->a, uri, (size_t)(qm - uri)) : arena_strdup(r->a, uri);
	const char *qs = req_env(r, "QUERY_STRING");
	r->query = qs ? qs : (qm ? qm + 1 : "");
	r->content_type = req_env(r, "CONTENT_TYPE");
	r->remote_addr = req_env(r, "REMOTE_ADDR");
	const char *https = req_env(r, "HTTPS");
	r->https = https && *https && strcasecmp(https, "off") != 0;

	if (nhdr > cfg->max_headers)
		return req_fail(r, RC_BADREQ, "Too many request headers");
	if (r->method == HM__MAX)
		return req_fail(r, RC_METHOD, "Method Not Allowed");
	/* clang-format off */
	if (!query_ok(r))
		return req_fail(r, RC_BADREQ, "Invalid query string: broken percent-encoding, a NUL "
				"byte or not UTF-8");
	/* clang-format on */
	const char *cl = req_env(r, "CONTENT_LENGTH");
	if (cl && *cl) {
		char *end;
		long long n = strtoll(cl, &end, 10);
		if (*end || n < 0)
			return req_fail(r, RC_BADREQ, "Invalid Content-Length");
		if (n > cfg->max_body_bytes)
			return req_fail(r, RC_TOOLARGE, "Request body too large (limit %lld bytes)",
					(long long)cfg->max_body_bytes);
		r->body_len = (size_t)n;
	}
	return RC_OK;
}

/* True when the content type is application/json (parameters such as charset allowed). */
static bool is_json_ctype(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	size_t n = strlen("application/json");
	if (strncasecmp(ct, "application/json", n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* The body cap of the matched route. */
static int64_t body_cap(const struct req *r)
{
	int64_t cap = r->w->cfg->max_body_bytes;
	if (r->route && r->route->max_body > 0 && r->route->max_body < cap)
		cap = r->route->max_body;
	return cap;
}

static int too_large(struct req *r, int64_t cap)
{
	return req_fail(r, RC_TOOLARGE, "Request body too large (limit %lld bytes)",
			(long long)cap);
}

int http_parse_json(struct req *r, const struct jx_field *fields, bool strict)
{
	const struct srv_config *cfg = r->w->cfg;
	if (!is_json_ctype(r->content_type))
		return req_fail(r, RC_MEDIA, "Unsupported media type: expected application/json");
	const char *body = r->body ? r->body : "";
	/* counted on the bytes before json-c builds anything: a small body of a million empty
	 * objects costs one pass, not gigabytes */
	if ((int64_t)jx_nodes(body, r->body_len) > cfg->max_json_nodes)
		return req_fail(r, RC_TOOLARGE, "JSON body has too many values (limit %lld)",
				(long long)cfg->max_json_nodes);
	/* RFC 8259 section 8.1: JSON text is UTF-8; json-c does not check (issue 14) */
	if (!utf8_valid((const unsigned char *)body, r->body_len))
		return req_fail(r, RC_BADREQ, "Malformed JSON body: not UTF-8");
	r->json = jx_parse(body, r->body_len, (int)cfg->max_json_depth);
	if (!r->json)
		return req_fail(r, RC_BADREQ, "Malformed JSON body");
	jx_arena_own(r->a, r->json);
	if (fields) {
		struct json_object *errs = NULL;
		if (!jx_validate(r->json, fields, strict, &errs))
			return req_fail_list(r, errs);
	}
	return RC_OK;
}

int http_read_body(struct req *r)
{
	int64_t cap = body_cap(r);
	size_t want = r->body_len;
	if ((int64_t)want > cap)
		return too_large(r, cap);
	if (want > 0) {
		r->body = arena_alloc(r->a, want + 1);
		size_t got = 0;
		while (got < want) {
			int n = FCGX_GetStr(r->body + got,
					    (int)(want - got > 65536 ? 65536 : want - got),
					    r->fcgx->in);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got < want)
			return req_fail(r, RC_BADREQ, "Incomplete request body");
		r->body[got] = '\0';
	} else {
		/* no CONTENT_LENGTH: read what is there, still capped */
		struct buf b;
		buf_init(&b, r->a);
		char chunk[8192];
		int n;
		while ((n = FCGX_GetStr(chunk, sizeof(chunk), r->fcgx->in)) > 0) {
			buf_append(&b, chunk, (size_t)n);
			if ((int64_t)b.len > cap)
				return too_large(r, cap);
		}
		r->body = b.p;
		r->body_len = b.len;
	}
	if (!(r->route->flags & ROUTE_JSON))
		return RC_OK;
	bool empty = true;
	for (size_t i = 0; i < r->body_len; i++)
		if (!isspace((unsigned char)r->body[i])) {
			empty = false;
			break;
		}
	if (empty) {
		if (r->route->flags & ROUTE_OPTBODY)
			return RC_OK;
		return req_fail_field(r, "body", NULL, "missing", "Field required");
	}
	return http_parse_json(r, r->route->body, (r->route->flags & ROUTE_STRICT) != 0);
}

static void put_headers(struct req *r, int status, const char *ctype, long long clen)
{
	FCGX_FPrintF(r->fcgx->out, "Status: %d %s\r\n", status, http_reason(status));
	if (ctype)
		FCGX_FPrintF(r->fcgx->out, "Content-Type: %s\r\n", ctype);
	if (clen >= 0)
		FCGX_FPrintF(r->fcgx->out, "Content-Length: %lld\r\n", clen);
	for (struct hdr *h = r->hdrs; h; h = h->next)
		FCGX_FPrintF(r->fcgx->out, "%s: %s\r\n", h->name, h->value);
	FCGX_PutS("\r\n", r->fcgx->out);
}

int res_stream_begin(struct req *r, int status, const char *ctype)
{
	r->status = status;
	r->ctype = arena_strdup(r->a, ctype);
	put_headers(r, status, ctype, -1);
	r->sent = true;
	if (FCGX_FFlush(r->fcgx->out) < 0)
		return -1;
	return 0;
}

int res_write(struct req *r, const char *p, size_t n)
{
	if (FCGX_PutStr(p, (int)n, r->fcgx->out) < 0)
		return -1;
	return FCGX_FFlush(r->fcgx->out) < 0 ? -1 : 0;
}

void http_finish(struct req *r, enum rc rc)
{
	if (r->sent)
		return;
	if (rc != RC_OK || r->status == 0) {
		if (rc == RC_OK)
			rc = RC_INTERNAL; /* a handler returned OK without a response: a bug */
		int status = rc_http_status(rc);
		if (status < 400 && rc != RC_OK)
			status = 500;
		buf_reset(&r->out);
		if (rc == RC_INVALID && r->detail_list) {
			buf_puts(&r->out, "{\"detail\":");
			size_t len;
			const char *s = jx_str(r->detail_list, &len);
			buf_append(&r->out, s, len);
			buf_putc(&r->out, '}');
		} else {
			const char *d = r->detail;
			if (status >= 500) {
				/* the message is for the log: clients get a fixed text */
				if (*d)
					log_msg(LL_ERROR, r->rid, "%s: %s", rc_str(rc), d);
				d = status == 503 ? "Service temporarily unavailable"
						  : "Internal server error";
				if (rc == RC_UNAVAILABLE && *r->detail &&
				    strncmp(r->detail, "Database", 8) == 0)
					d = "Database unavailable";
			} else if (!*d) {
				d = http_reason(status);
			}
			buf_puts(&r->out, "{\"detail\":");
			buf_json_str(&r->out, d);
			buf_putc(&r->out, '}');
		}
		if (status == 503 || status == 429) {
			bool has = false;
			for (struct hdr *h = r->hdrs; h; h = h->next)
				if (strcasecmp(h->name, "Retry-After") == 0)
					has = true;
			if (!has)
				res_header(r, "Retry-After", "1");
		}
		r->status = status;
		r->ctype = "application/json";
	}
	bool head = r->method == HM_HEAD;
	if (r->status == 304) { /* Not Modified: no body, no Content-Type or Content-Length */
		put_headers(r, 304, NULL, -1);
		return;
	}
	put_headers(r, r->status, r->ctype, (long long)r->out.len);
	if (!head && r->out.len)
		FCGX_PutStr(r->out.p, (int)r->out.len, r->fcgx->out);
}
