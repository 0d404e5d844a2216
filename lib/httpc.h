/* httpc.h - plain HTTP/JSON calls over libcurl: one blocking request, bounded in time and size.
 *
 * For the small request/response APIs a server talks to (an OpenID provider's discovery
 * document, JWKS and token endpoint; REST APIs such as GitHub's or Atlassian's): GET or POST
 * with headers and a body, connect and total timeouts, a cap on the answer's size, no
 * redirects followed (a redirect would carry our credentials to another host), http and
 * https only. The outcome is classified like lib/llm.h's: a status per kind of failure and a
 * fixed detail text, never the service's own text, so a caller can show it to a user.
 *
 * Secrets: header lines are wiped (explicit_bzero) before they are freed; a URL must not
 * carry one (it may reach a log). Threads: a call uses its own easy handle, so calls may run
 * on any number of threads at once; curl_global_init() is the program's job, and SIGPIPE
 * must be ignored (CURLOPT_NOSIGNAL is set). curl's proxy environment is honoured.
 *
 * On an event loop the same call runs without blocking: httpc_start builds the transfer, the
 * loop's multi runs it (lib/evcurl.h), httpc_finish classifies it exactly as httpc_do would.
 */
#ifndef IF_HTTPC_H
#define IF_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

struct arena;

#define HTTPC_BODY_MAX_DEFAULT (1u << 20) /* answer cap when the request gives none: 1 MiB */
#define HTTPC_MAX_HEADERS 16              /* request header lines */

enum httpc_status {
	HTTPC_OK,            /* a 2xx answer, whole */
	HTTPC_E_AUTH,        /* 401 or 403: credentials missing, wrong or not allowed */
	HTTPC_E_NOTFOUND,    /* 404 or 410 */
	HTTPC_E_QUOTA,       /* 429 */
	HTTPC_E_BADREQ,      /* another 4xx, or a URL we refuse (scheme, malformed) */
	HTTPC_E_SERVER,      /* 5xx */
	HTTPC_E_UNREACHABLE, /* resolve, connect, TLS, connection cut */
	HTTPC_E_TIMEOUT,     /* connect or total timeout */
	HTTPC_E_TOOLARGE,    /* the answer is larger than max_body */
	HTTPC_E_PROTOCOL,    /* 1xx/3xx final status, or an answer that cannot be used */
	HTTPC__MAX
};

/* "ok", "auth", "notfound", "quota", "badreq", "server", "unreachable", "timeout",
 * "toolarge", "protocol"; "?" otherwise. Static; fit for logs. */
const char *httpc_status_str(enum httpc_status s);

/* A fixed sentence about s, safe to show to a user ("the service did not answer in time");
 * never the service's text. Static. */
const char *httpc_status_detail(enum httpc_status s);

struct httpc_req {
	const char *method; /* "GET" (default when NULL), "POST", "PUT", "DELETE" */
	const char *url;    /* absolute http:// or https:// URL, no secret in it */
	const char *headers[HTTPC_MAX_HEADERS + 1]; /* "Name: value" lines, NULL-terminated;
						     * CR/LF refused */
	const char *body;                           /* request body, NULL for none */
	size_t body_len;                            /* its length */
	int64_t connect_timeout_ms;                 /* 0: 10 s */
	int64_t total_timeout_ms;                   /* 0: 30 s */
	size_t max_body; /* answer cap in bytes; 0: HTTPC_BODY_MAX_DEFAULT */
};

struct httpc_res {
	enum httpc_status status; /* outcome */
	int http_status;          /* final HTTP status, 0 when none arrived */
	char *body;               /* the answer (any status), NUL-terminated; NULL when none */
	size_t body_len;          /* bytes of body */
	int64_t retry_after_s;    /* Retry-After in seconds (429/503), -1 when absent */
	int64_t total_ms;         /* duration of the call */
};

/*
 * Runs the request on this thread. Always fills *out (even on failure; body may hold an error
 * answer, for the caller to classify further, never to show). Returns out->status. The body
 * is owned by the caller: httpc_res_free(). Everything in rq is borrowed for the call.
 */
enum httpc_status httpc_do(const struct httpc_req *rq, struct httpc_res *out);

/* A call started with httpc_start and not finished yet. */
struct httpc_call;

/*
 * Builds the transfer of rq with httpc_do's checks and options, for a multi handle to run
 * (evcurl_add(httpc_easy(call))). Returns the call, owned by the caller until httpc_finish or
 * httpc_abort; or NULL with *refused saying why (HTTPC_E_BADREQ: a URL or header refused).
 * rq->body is borrowed until the call ends; the URL and headers are copied. The easy handle's
 * CURLOPT_PRIVATE is left to the caller.
 */
struct httpc_call *httpc_start(const struct httpc_req *rq, enum httpc_status *refused);

/* The call's easy handle (borrowed: freed by httpc_finish / httpc_abort). */
CURL *httpc_easy(struct httpc_call *call);

/*
 * Ends a call whose transfer finished with cc (already removed from its multi): fills *out as
 * httpc_do does and frees the call (header lines wiped). Returns out->status.
 */
enum httpc_status httpc_finish(struct httpc_call *call, CURLcode cc, struct httpc_res *out);

/* Frees a call that will not finish (remove its easy handle from the multi first). NULL ok. */
void httpc_abort(struct httpc_call *call);

/* Releases out's body (out itself is the caller's). Accepts NULL. */
void httpc_res_free(struct httpc_res *out);

/* Percent-encodes s for a query or an application/x-www-form-urlencoded value (RFC 3986
 * unreserved characters kept, everything else %XX). Arena string. */
char *httpc_urlencode(struct arena *a, const char *s);

/* base64url without padding (RFC 4648 section 5) of n bytes. Arena string. */
char *httpc_b64url(struct arena *a, const void *p, size_t n);

/* Standard base64 with padding (RFC 4648 section 4), e.g. for Basic credentials. Arena. */
char *httpc_b64(struct arena *a, const void *p, size_t n);

/* Decodes base64url (padding optional) or standard base64 (white space skipped: GitHub
 * wraps its base64 at 60 columns) into an arena buffer, NUL appended; *n its length.
 * NULL when s is not valid base64 of either alphabet. */
unsigned char *httpc_b64_decode(struct arena *a, const char *s, size_t len, size_t *n);

#endif
