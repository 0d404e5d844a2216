/* http.h - one request over FastCGI: input with hard caps, output in one place.
 *
 * Reading (FastCGI 1.0 section 6.2, the Responder role): params become method, path, query,
 * headers; the body is read up to max_body_bytes. Writing: a handler either calls one of the
 * res_* functions and returns RC_OK, or returns an error code after req_fail(); the server
 * turns the code into a status (rc_http_status) and a {"detail": ...} body.
 */
#ifndef IF_HTTP_H
#define IF_HTTP_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ctx.h"
#include "rc.h"
#include "route.h"

struct wctx;
struct tctx;
struct db_conn;


struct hdr {
	const char *name;  /* header name */
	const char *value; /* header value, no CR/LF (checked when added) */
	struct hdr *next;  /* next in insertion order */
};

struct req {
	struct wctx *w;     /* worker context */
	struct tctx *t;     /* thread context */
	FCGX_Request *fcgx; /* the FastCGI request (borrowed) */
	/* The request's context (lib/ctx.h): its fields are also the request's own (r->a, the
	 * arena; r->rid, the request id from X-Request-Id when sane, else ours; r->rc, r->detail,
	 * r->detail_list, the error; r->db, r->db_tx, r->db_sqlstate, the borrowed connection),
	 * and &r->c is the whole, for code that runs without a request. */
	union {
		struct ctx c;
		struct {
			CTX_FIELDS
		};
	};
	int64_t start_us;          /* monotonic start time */
	enum http_method method;   /* parsed method */
	const char *method_str;    /* as received */
	const char *path;          /* decoded-free path, without query */
	const char *query;         /* raw query string, "" when none */
	const char *content_type;  /* CONTENT_TYPE or NULL */
	const char *remote_addr;   /* REMOTE_ADDR from nginx */
	bool https;                /* HTTPS param set by nginx */
	char *body;                /* body bytes (NUL-terminated), NULL when none */
	size_t body_len;           /* body length */
	struct json_object *json;  /* parsed JSON body (arena-released), NULL when none */
	const struct route *route; /* matched route, NULL before matching */
	struct route_match m;      /* path parameters */
	struct principal auth;     /* filled by the auth hook */
	bool authed;               /* auth.user_id is valid */
	int status;                /* response status, 0 until a response is set */
	const char *ctype;         /* response content type */
	struct hdr *hdrs;          /* extra response headers */
	struct buf out;            /* response body */
	bool sent;                 /* headers already written (streaming) */
};

/* Path parameter by name ("id"), NULL when the route has none of that name. Borrowed. */
const char *req_param(struct req *r, const char *name);

/* Query parameter by name, percent-decoded; NULL when absent. With several, the first. */
const char *req_query(struct req *r, const char *name);

/* Raw FastCGI param ("HTTP_AUTHORIZATION", "REMOTE_ADDR"); NULL when absent. */
const char *req_env(struct req *r, const char *name);

/* Cookie value by name from HTTP_COOKIE; NULL when absent. Arena copy. */
const char *req_cookie(struct req *r, const char *name);

/* Adds a response header. Values with CR or LF are dropped (logged). Strings are copied. */
void res_header(struct req *r, const char *name, const char *value);

/* Sets a JSON response: consumes o (json_object_put is done by the arena). RC_OK. */
int res_json(struct req *r, int status, struct json_object *o);

/* Sets a response whose body is already serialised JSON (e.g. built by PostgreSQL). RC_OK. */
int res_json_text(struct req *r, int status, const char *json, size_t len);

/* res_json_text of a NUL-terminated JSON text with status 200. RC_OK. */
int res_json_str(struct req *r, const char *json);

/* The tail of a handler whose SQL answers one JSON text (db_value): 200 with json when there
 * is one; else the error the query recorded; else (no row: absent or not visible) rc with
 * detail. Returns what it answered (RC_OK or the error). */
int res_json_or(struct req *r, const char *json, enum rc rc, const char *detail);

/* Sets an arbitrary body with a content type. Copies body. RC_OK. */
int res_body(struct req *r, int status, const char *ctype, const char *body, size_t len);

/* Records an error for the client: code and a message safe to show. Returns rc, so handlers
 * write `return req_fail(r, RC_NOTFOUND, "Product not found or access denied");`. */
int req_fail(struct req *r, enum rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records a 422 with a FastAPI-style list (consumed). Returns RC_INVALID. */
int req_fail_list(struct req *r, struct json_object *list);

/* 422 for one field: {"detail":[{"type":type,"loc":[where,name],"msg":msg}]}. */
int req_fail_field(struct req *r, const char *where, const char *name, const char *type,
		   const char *msg);

/* Streaming: writes the headers now (status, ctype, extra headers). Then res_write() sends
 * bytes and flushes. Returns 0, -1 when the client went away. */
int res_stream_begin(struct req *r, int status, const char *ctype);
int res_write(struct req *r, const char *p, size_t n);

/* --- used by the server (worker.c) --- */

/* Reads params and body with the caps of the worker's config; fills r. Returns RC_OK or an
 * error already recorded with req_fail (413, 400, 415). */
int http_read(struct req *r);

/* Reads the body (route matched, middleware passed): caps, content type, JSON parse and the
 * route's field contract. RC_OK or an error recorded with req_fail (413, 400, 415, 422). */
int http_read_body(struct req *r);

/* Parses r->body as JSON: content type (415), value count (413), depth and syntax (400), then
 * the field contract when fields is not NULL (422; strict: unknown members too). Sets r->json
 * (arena-released). For routes that take their body raw and decide late (a switched-off
 * route answering 404 whatever is sent). */
int http_parse_json(struct req *r, const struct jx_field *fields, bool strict);

/* Writes the response (or the error of rc when no response was set). */
void http_finish(struct req *r, enum rc rc);

#endif
