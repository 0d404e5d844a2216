/* fuzz-request.c - one FastCGI request as the server reads it, before any SQL runs.
 *
 * Input: the FastCGI parameters, one "NAME=VALUE" per line (what libfcgi hands us as envp:
 * REQUEST_METHOD, REQUEST_URI, QUERY_STRING, CONTENT_TYPE, CONTENT_LENGTH, HTTP_COOKIE,
 * HTTP_AUTHORIZATION, HTTP_X_FORWARDED_FOR, HTTP_X_REQUEST_ID, ...), an empty line, then the
 * body as the FastCGI stdin stream. The steps: http_read (header count, method, URI split,
 * Content-Length), route_match on app_routes, http_read_body for routes with a body (caps,
 * JSON parse and the route's contract), then the helpers handlers call on untrusted input:
 * the Authorization header and session cookie (session_token), the client address (with and
 * without trust_proxy), query parameters (req_query, the pagination and UUID parsers), path
 * UUIDs, and a multipart body's boundary and parts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "app.h"
#include "arena.h"
#include "../../app/session.h"
#include "../../lib/auth.h"
#include "mp.h"
#include "products.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct srv_config *srv_cfg;
static struct app_config *app_cfg_loaded;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char *av[] = {"ideaforge-api", "--config", "/dev/null", NULL};
	void *app = NULL;
	char err[512];
	if (app_config_load(3, av, &srv_cfg, &app, err, sizeof(err)) != 0)
		abort();
	app_cfg_loaded = app;
	return 0;
}

static void fill_eof(FCGX_Stream *s)
{
	s->isClosed = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;
	/* the parameters: lines up to the first empty one */
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *envp[64];
	int nenv = 0;
	char *p = copy, *body = copy + size;
	while (p < copy + size) {
		char *nl = memchr(p, '\n', (size_t)(copy + size - p));
		char *end = nl ? nl : copy + size;
		if (end == p) { /* the empty line: the body follows */
			body = p + 1;
			break;
		}
		*end = '\0';
		if (strchr(p, '=') && strlen(p) == (size_t)(end - p) && nenv < 63)
			envp[nenv++] = p;
		p = end + 1;
		if (!nl)
			body = copy + size;
	}
	envp[nenv] = NULL;
	size_t blen = body < copy + size ? (size_t)(copy + size - body) : 0;
	/* the stdin stream: a heap copy of exactly the body, so a read past it is caught */
	unsigned char *in = malloc(blen ? blen : 1);
	if (!in) {
		free(copy);
		return 0;
	}
	memcpy(in, body, blen);
	FCGX_Stream stream = {.rdNext = in,
			      .wrNext = in + blen,
			      .stop = in + blen,
			      .stopUnget = in,
			      .isReader = 1,
			      .fillBuffProc = fill_eof};
	FCGX_Request fcgx = {.in = &stream, .envp = envp, .ipcFd = -1};

	struct app_config appc = *app_cfg_loaded;
	appc.trust_proxy = mode & 1;
	struct wctx w = {.cfg = srv_cfg, .app_cfg = &appc};
	struct tctx t = {.w = &w};
	struct arena *a = arena_new(8192);
	struct req *r = calloc(1, sizeof(*r));
	r->w = &w;
	r->t = &t;
	r->fcgx = &fcgx;
	r->a = a;
	r->m.idx = -1;

	if (http_read(r) == RC_OK) {
		route_match(app_routes, app_nroutes, r->method, r->path, a, &r->m);
		if (r->m.idx >= 0) {
			r->route = &app_routes[r->m.idx];
			if (r->route->flags & (ROUTE_JSON | ROUTE_RAW))
				(void)http_read_body(r);
			if (req_param(r, "id"))
				(void)req_path_uuid(r, "id");
		}
		static const char *const names[] = {"limit",  "offset",     "product_id",
						    "search", "phase_name", "full",
						    "page",   "session_id"};
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			(void)req_query(r, names[i]);
		int v;
		(void)req_query_int(r, "limit", 50, 1, 100, &v);
		(void)req_query_int(r, "offset", 0, 0, 1000000, &v);
		const char *u;
		(void)req_query_uuid(r, "product_id", &u);
		(void)session_token(r);
		(void)session_client_addr(r);
		(void)req_cookie(r, "session_token");
		(void)req_cookie(r, "csrf");
		const char *bnd = r->content_type ? mp_boundary(a, r->content_type) : NULL;
		if (bnd && r->body) {
			struct mp_part parts[8];
			(void)mp_parse(a, r->body, r->body_len, bnd, parts, 8);
		}
	}
	if (r->detail_list)
		json_object_put(r->detail_list);
	free(r);
	arena_free(a);
	free(in);
	free(copy);
	return 0;
}
