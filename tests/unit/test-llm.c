/* test-llm.c - unit tests of lib/llm.c against an in-process loopback HTTP server (plain
 * sockets on an ephemeral port, one thread per connection) that replays canned provider
 * answers, written in small pieces so that chunk boundaries fall inside SSE lines.
 *
 * For each provider (loop tests, _i = provider): the streamed answer (tokens in order, text,
 * usage, finish reason), the non-streamed answer, the request as the server saw it (path,
 * the provider's auth header, the key never in the URL, the JSON body), the error statuses
 * (401, 429 with Retry-After, 500, 529, refused connection, a stream cut after two tokens,
 * no token in time, an idle stream, garbage, cancellation) and the verify call. Then many
 * calls on one curl multi, the backoff bounds and the retry table. No assert compares
 * wall-clock durations. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "llm.h"

#define KEY "sk-TEST-0123456789abcdef"
#define SECRET_TEXT "Zebra-Provider-Says-9931" /* in every canned error body */
#define PIECE 11                               /* bytes per server write */
#define MAX_CONNS 32

/* --- canned answers ------------------------------------------------------------------------ */

/* The canned streams keep one event per line. */
/* clang-format off */
#define OAI_CHUNK(delta, fin)                                                                  \
	"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000," \
	"\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":" delta                     \
	",\"finish_reason\":" fin "}]}\n\n"

static const char oai_stream[] =
	OAI_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
	OAI_CHUNK("{\"content\":\"Hel\"}", "null")
	OAI_CHUNK("{\"content\":\"lo\"}", "null")
	OAI_CHUNK("{\"content\":\" world\"}", "null")
	OAI_CHUNK("{}", "\"stop\"")
	"data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
	"\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
	"\"completion_tokens\":3,\"total_tokens\":15}}\n\n"
	"data: [DONE]\n\n";

static const char oai_plain[] =
	"{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion\",\"created\":1700000000,"
	"\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	"\"content\":\"Hello world\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
	"\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":14}}";

#define ANT_EV(name, json) "event: " name "\ndata: " json "\n\n"
#define ANT_DELTA(t)                                                                           \
	ANT_EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,"            \
				      "\"delta\":{\"type\":\"text_delta\",\"text\":\"" t "\"}}")

static const char ant_stream[] =
	ANT_EV("message_start",
	       "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
	       "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\","
	       "\"stop_reason\":null,\"stop_sequence\":null,"
	       "\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}")
	ANT_EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"
				      "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
	ANT_EV("ping", "{\"type\": \"ping\"}")
	ANT_DELTA("Hel") ANT_DELTA("lo") ANT_DELTA(" world")
	ANT_EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")
	ANT_EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
				"\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}")
	ANT_EV("message_stop", "{\"type\":\"message_stop\"}");

static const char ant_plain[] =
	"{\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
	"\"content\":[{\"type\":\"text\",\"text\":\"Hello\"},{\"type\":\"text\",\"text\":\" world\"}],"
	"\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
	"\"usage\":{\"input_tokens\":25,\"output_tokens\":2}}";

/* Gemini ends its SSE lines with CRLF. */
#define GEM_EV(parts, extra)                                                                   \
	"data: {\"candidates\": [{\"content\": {\"parts\": [" parts "],\"role\": \"model\"}" extra \
	",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},"     \
	"\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n"

static const char gem_stream[] =
	GEM_EV("{\"text\": \"Hel\"}", "")
	GEM_EV("{\"text\": \"lo\"}", "")
	GEM_EV("{\"text\": \" wor\"}, {\"text\": \"thinking...\", \"thought\": true}, "
	       "{\"text\": \"ld\"}", "")
	"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},"
	"\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,"
	"\"candidatesTokenCount\": 4,\"totalTokenCount\": 13},\"modelVersion\": "
	"\"gemini-2.0-flash\"}\r\n\r\n";
/* clang-format on */

static const char gem_plain[] =
	"{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello world\"}],\"role\": "
	"\"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": "
	"{\"promptTokenCount\": 9,\"candidatesTokenCount\": 2,\"totalTokenCount\": 11},"
	"\"modelVersion\": \"gemini-2.0-flash\"}";

struct pcase {
	enum llm_provider p;     /* provider */
	const char *model;       /* model asked for */
	const char *base_path;   /* base URL after http://127.0.0.1:port */
	const char *stream_line; /* request line of a streamed call */
	const char *plain_line;  /* request line of a non-streamed call */
	const char *verify_line; /* request line of llm_verify_new */
	const char *key_header;  /* header carrying the key */
	const char *key_value;   /* its expected value */
	const char *stream;      /* streamed answer */
	const char *tokens;      /* its tokens, each followed by '|' */
	const char *third_token; /* where the third token starts in stream */
	int64_t stream_in;       /* usage of the streamed answer */
	int64_t stream_out;      /* idem */
	const char *finish;      /* finish reason of both answers */
	const char *plain;       /* non-streamed answer */
	int64_t plain_in;        /* its usage */
	int64_t plain_out;       /* idem */
	const char *err_401;     /* error bodies */
	const char *err_429;     /* idem */
	const char *err_500;     /* idem */
};

/* clang-format off */
static const struct pcase cases[LLM__MAX] = {
	[LLM_OPENAI] = {
		.p = LLM_OPENAI,
		.model = "gpt-4o-mini",
		.base_path = "/v1",
		.stream_line = "POST /v1/chat/completions HTTP/1.1",
		.plain_line = "POST /v1/chat/completions HTTP/1.1",
		.verify_line = "GET /v1/models HTTP/1.1",
		.key_header = "Authorization",
		.key_value = "Bearer " KEY,
		.stream = oai_stream,
		.tokens = "Hel|lo| world|",
		.third_token = "\" world\"",
		.stream_in = 12,
		.stream_out = 3,
		.finish = "stop",
		.plain = oai_plain,
		.plain_in = 12,
		.plain_out = 2,
		.err_401 = "{\"error\":{\"message\":\"Incorrect API key. " SECRET_TEXT "\","
			   "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
		.err_429 = "{\"error\":{\"message\":\"You exceeded your quota. " SECRET_TEXT "\","
			   "\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}",
		.err_500 = "{\"error\":{\"message\":\"The server had an error. " SECRET_TEXT "\","
			   "\"type\":\"server_error\",\"param\":null,\"code\":null}}",
	},
	[LLM_ANTHROPIC] = {
		.p = LLM_ANTHROPIC,
		.model = "claude-sonnet-4-5",
		.base_path = "",
		.stream_line = "POST /v1/messages HTTP/1.1",
		.plain_line = "POST /v1/messages HTTP/1.1",
		.verify_line = "GET /v1/models HTTP/1.1",
		.key_header = "x-api-key",
		.key_value = KEY,
		.stream = ant_stream,
		.tokens = "Hel|lo| world|",
		.third_token = "\" world\"",
		.stream_in = 25,
		.stream_out = 15,
		.finish = "end_turn",
		.plain = ant_plain,
		.plain_in = 25,
		.plain_out = 2,
		.err_401 = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
			   "\"message\":\"invalid x-api-key " SECRET_TEXT "\"}}",
		.err_429 = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
			   "\"message\":\"Number of requests exceeded " SECRET_TEXT "\"}}",
		.err_500 = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
			   "\"message\":\"Internal server error " SECRET_TEXT "\"}}",
	},
	[LLM_GEMINI] = {
		.p = LLM_GEMINI,
		.model = "gemini-2.0-flash",
		.base_path = "",
		.stream_line = "POST /v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse "
			       "HTTP/1.1",
		.plain_line = "POST /v1beta/models/gemini-2.0-flash:generateContent HTTP/1.1",
		.verify_line = "GET /v1beta/models HTTP/1.1",
		.key_header = "x-goog-api-key",
		.key_value = KEY,
		.stream = gem_stream,
		.tokens = "Hel|lo| wor|ld|",
		.third_token = "\" wor\"",
		.stream_in = 9,
		.stream_out = 4,
		.finish = "STOP",
		.plain = gem_plain,
		.plain_in = 9,
		.plain_out = 2,
		.err_401 = "{\"error\":{\"code\":401,\"message\":\"Invalid credentials. " SECRET_TEXT
			   "\",\"status\":\"UNAUTHENTICATED\"}}",
		.err_429 = "{\"error\":{\"code\":429,\"message\":\"Resource exhausted. " SECRET_TEXT
			   "\",\"status\":\"RESOURCE_EXHAUSTED\"}}",
		.err_500 = "{\"error\":{\"code\":500,\"message\":\"Internal error. " SECRET_TEXT
			   "\",\"status\":\"INTERNAL\"}}",
	},
};
/* clang-format on */

/* --- the loopback server ------------------------------------------------------------------- */

struct reply {
	const char *head;  /* status line and extra header lines, CRLF-separated, no final CRLF */
	const char *body;  /* body */
	bool chunked;      /* Transfer-Encoding: chunked (streams), else Content-Length */
	size_t stop_after; /* body bytes to send before stopping (0 = all) */
	bool hang;         /* after stop_after bytes (or before any answer): wait, never finish */
};

struct srv {
	int lfd;                    /* listening socket */
	int port;                   /* its port */
	int stop[2];                /* pipe: a byte in it stops everything */
	pthread_t acceptor;         /* accept loop */
	pthread_t conns[MAX_CONNS]; /* connection threads */
	int nconns;                 /* started connection threads */
	pthread_mutex_t mu;         /* guards what follows */
	struct reply rep;           /* what to answer */
	void (*echo)(const char *body, size_t len, struct buf *out); /* body from the request */
	struct buf req; /* the last request, head and body */
	int nreq;       /* requests received */
	int active;     /* connections being answered */
	int max_active; /* most at once */
};

struct conn {
	struct srv *s; /* server */
	int fd;        /* accepted socket */
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Reads one request (head, then Content-Length bytes of body) into b; -1 on EOF/error. */
static int read_request(int fd, struct buf *b)
{
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		char tmp[4096];
		const char *end = b->p ? memmem(b->p, b->len, "\r\n\r\n", 4) : NULL;
		if (end) {
			const char *cl = strcasestr(b->p, "\r\ncontent-length:");
			size_t want =
				(size_t)(end + 4 - b->p) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
			if (b->len >= want)
				return 0;
		}
		ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
		if (r <= 0)
			return -1;
		buf_append(b, tmp, (size_t)r);
	}
}

static void wait_stop(struct srv *s)
{
	struct pollfd p = {s->stop[0], POLLIN, 0};
	poll(&p, 1, 20000);
}

/* Sends the body in PIECE-byte writes, each its own HTTP chunk when chunked. */
static int send_body(int fd, const struct reply *r, const char *body, size_t len)
{
	size_t end = r->stop_after && r->stop_after < len ? r->stop_after : len;
	for (size_t i = 0; i < end; i += PIECE) {
		size_t n = end - i < PIECE ? end - i : PIECE;
		char hdr[32];
		if (r->chunked) {
			snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
			if (send_all(fd, hdr, strlen(hdr)))
				return -1;
		}
		if (send_all(fd, body + i, n) || (r->chunked && send_all(fd, "\r\n", 2)))
			return -1;
		sleep_ms(1);
	}
	return 0;
}

/* Tokens the client has received (got_token), and how many a "cut" reply waits for before it
 * resets the connection: a reset discards whatever still sits unread in the client's receive
 * queue, so resetting at once would make what the client saw depend on scheduling (issue 14:
 * this test failed under ASan on a loaded machine). 0 = reset at once. */
static _Atomic int tokens_seen;
static _Atomic int reset_after_tokens;

static void respond(struct srv *s, int fd, const struct reply *r, const char *reqbody,
		    size_t reqlen)
{
	struct buf head, body;
	buf_init(&head, NULL);
	buf_init(&body, NULL);
	pthread_mutex_lock(&s->mu);
	void (*echo)(const char *, size_t, struct buf *) = s->echo;
	pthread_mutex_unlock(&s->mu);
	if (echo)
		echo(reqbody, reqlen, &body);
	else
		buf_puts(&body, r->body ? r->body : "");
	buf_printf(&head, "%s\r\nConnection: close\r\n", r->head);
	if (r->chunked)
		buf_puts(&head, "Transfer-Encoding: chunked\r\n\r\n");
	else
		buf_printf(&head, "Content-Length: %zu\r\n\r\n", body.len);
	if (send_all(fd, head.p, head.len) || send_body(fd, r, body.p, body.len))
		goto out;
	if (r->hang) {
		wait_stop(s);
	} else if (r->stop_after) { /* cut: reset the connection mid-body */
		for (int i = 0; i < 10000 && tokens_seen < reset_after_tokens; i++)
			sleep_ms(1);
		struct linger lg = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (r->chunked) {
		send_all(fd, "0\r\n\r\n", 5);
	}
out:
	buf_free(&head);
	buf_free(&body);
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct srv *s = cn->s;
	struct buf req;
	struct reply r;
	buf_init(&req, NULL);
	if (read_request(cn->fd, &req) == 0) {
		pthread_mutex_lock(&s->mu);
		buf_reset(&s->req);
		buf_append(&s->req, req.p, req.len);
		s->nreq++;
		if (++s->active > s->max_active)
			s->max_active = s->active;
		r = s->rep;
		pthread_mutex_unlock(&s->mu);
		const char *body = strstr(req.p, "\r\n\r\n") + 4;
		if (r.hang && !r.head)
			wait_stop(s);
		else
			respond(s, cn->fd, &r, body, req.len - (size_t)(body - req.p));
		pthread_mutex_lock(&s->mu);
		s->active--;
		pthread_mutex_unlock(&s->mu);
	}
	close(cn->fd);
	buf_free(&req);
	free(cn);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct srv *s = arg;
	for (;;) {
		struct pollfd p[2] = {{s->lfd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
		if (poll(p, 2, -1) < 0 || p[1].revents)
			break;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		struct conn *cn = malloc(sizeof(*cn));
		cn->s = s;
		cn->fd = fd;
		if (s->nconns == MAX_CONNS ||
		    pthread_create(&s->conns[s->nconns], NULL, conn_main, cn) != 0) {
			close(fd);
			free(cn);
			continue;
		}
		s->nconns++;
	}
	return NULL;
}

static struct srv *srv_start(const struct reply *r)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(s->lfd, 64), 0);
	getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
	s->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pipe(s->stop), 0);
	pthread_mutex_init(&s->mu, NULL);
	buf_init(&s->req, NULL);
	s->rep = *r;
	ck_assert_int_eq(pthread_create(&s->acceptor, NULL, acceptor_main, s), 0);
	return s;
}

static void srv_set(struct srv *s, const struct reply *r)
{
	pthread_mutex_lock(&s->mu);
	s->rep = *r;
	pthread_mutex_unlock(&s->mu);
}

static void srv_stop(struct srv *s)
{
	ck_assert_int_eq(write(s->stop[1], "x", 1), 1);
	pthread_join(s->acceptor, NULL);
	for (int i = 0; i < s->nconns; i++)
		pthread_join(s->conns[i], NULL);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	pthread_mutex_destroy(&s->mu);
	buf_free(&s->req);
	free(s);
}

/* A copy of the last request (malloc'ed). */
static char *srv_request(struct srv *s)
{
	pthread_mutex_lock(&s->mu);
	char *r = strndup(s->req.p ? s->req.p : "", s->req.len);
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* A TCP port on 127.0.0.1 that nothing listens on. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	return ntohs(sa.sin_port);
}

/* --- request inspection -------------------------------------------------------------------- */

static char *req_line(const char *req)
{
	return strndup(req, strcspn(req, "\r\n"));
}

/* Value of header name in req (first match, case-insensitive), malloc'ed; NULL if absent. */
static char *req_header(const char *req, const char *name)
{
	size_t n = strlen(name);
	const char *end = strstr(req, "\r\n\r\n");
	for (const char *l = strstr(req, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
			h += n + 1;
			while (*h == ' ')
				h++;
			return strndup(h, strcspn(h, "\r\n"));
		}
	}
	return NULL;
}

static struct json_object *req_json(const char *req)
{
	const char *b = strstr(req, "\r\n\r\n");
	ck_assert_ptr_nonnull(b);
	struct json_object *o = json_tokener_parse(b + 4);
	ck_assert_ptr_nonnull(o);
	return o;
}

/* String at a path like "messages.1.content" (numbers index arrays); NULL if absent. */
static const char *jpath(struct json_object *o, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(t));
		else if (!json_object_object_get_ex(o, t, &o))
			o = NULL;
	}
	return o ? json_object_get_string(o) : NULL;
}

static void assert_jpath(struct json_object *o, const char *path, const char *want)
{
	const char *got = jpath(o, path);
	ck_assert_msg(got && strcmp(got, want) == 0, "%s: got %s, want %s", path,
		      got ? got : "(absent)", want);
}

/* --- the client side ----------------------------------------------------------------------- */

struct got {
	struct buf toks;       /* tokens, each followed by '|' */
	int ntok;              /* tokens received */
	int cancel_at;         /* cancel on this token (1-based), 0 = never */
	int ndone;             /* on_done calls */
	struct llm_result res; /* copy of the result; text and finish_reason below */
	char *text;            /* copy of res.text */
	char *finish;          /* copy of res.finish_reason */
};

static int got_token(void *u, const char *t, size_t n)
{
	struct got *g = u;
	buf_append(&g->toks, t, n);
	buf_putc(&g->toks, '|');
	g->ntok++;
	tokens_seen++;
	return g->cancel_at && g->ntok >= g->cancel_at;
}

static void got_done(void *u, const struct llm_result *r)
{
	struct got *g = u;
	g->ndone++;
	g->res = *r;
	g->text = strndup(r->text, r->text_len);
	g->finish = r->finish_reason ? strdup(r->finish_reason) : NULL;
	g->res.text = g->text;
	g->res.finish_reason = g->finish;
}

static void got_init(struct got *g)
{
	memset(g, 0, sizeof(*g));
	buf_init(&g->toks, NULL);
	buf_puts(&g->toks, "");
}

static void got_free(struct got *g)
{
	buf_free(&g->toks);
	free(g->text);
	free(g->finish);
}

static const struct llm_msg conversation[] = {
	{"user", "Say hello"},
	{"assistant", "Hi!"},
	{"user", "Again, with \"quotes\", a \\ and a\nnewline"},
};

static void set_base(const struct pcase *pc, int port, char *base, size_t n)
{
	snprintf(base, n, "http://127.0.0.1:%d%s", port, pc->base_path);
}

/* A request for case pc against port (base URL written into base). */
static struct llm_request make_req(const struct pcase *pc, int port, bool stream, char *base,
				   size_t n)
{
	set_base(pc, port, base, n);
	struct llm_request rq = {
		.provider = pc->p,
		.base_url = base,
		.api_key = KEY,
		.model = pc->model,
		.system = "You are terse.",
		.msgs = conversation,
		.nmsgs = 3,
		.max_tokens = 256,
		.temperature = 0.25,
		.stream = stream,
		.connect_timeout_ms = 2000,
		.first_token_timeout_ms = 5000,
		.idle_timeout_ms = 5000,
		.total_timeout_ms = 15000,
	};
	return rq;
}

/* Runs rq blocking, checking that on_done came exactly once with the returned status. */
static void run(const struct llm_request *rq, struct got *g)
{
	struct llm_call *c = llm_call_new(rq, got_token, got_done, g);
	ck_assert_ptr_nonnull(c);
	int st = llm_call_perform(c);
	ck_assert_int_eq(g->ndone, 1);
	ck_assert_int_eq(st, g->res.status);
	llm_call_done(c, CURLE_OK); /* a second done is ignored */
	ck_assert_int_eq(g->ndone, 1);
	llm_call_free(c);
	ck_assert_ptr_null(strstr(g->res.detail, SECRET_TEXT));
	ck_assert_ptr_null(strstr(g->res.detail, KEY));
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
}

/* --- answers ------------------------------------------------------------------------------- */

START_TEST(test_stream_answer)
{
	const struct pcase *pc = &cases[_i];
	struct reply r = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", pc->stream, true, 0,
			  false};
	struct srv *s = srv_start(&r);
	char base[128];
	struct llm_request rq = make_req(pc, s->port, true, base, sizeof(base));
	struct got g;
	got_init(&g);
	run(&rq, &g);
	ck_assert_str_eq(llm_status_str(g.res.status), "ok");
	ck_assert_str_eq(g.toks.p, pc->tokens);
	ck_assert_str_eq(g.text, "Hello world");
	ck_assert_uint_eq(g.res.text_len, 11);
	ck_assert(g.res.got_tokens);
	ck_assert_int_eq(g.res.http_status, 200);
	ck_assert_int_eq(g.res.input_tokens, pc->stream_in);
	ck_assert_int_eq(g.res.output_tokens, pc->stream_out);
	ck_assert_str_eq(g.finish, pc->finish);
	ck_assert_int_eq(g.res.retry_after_ms, -1);
	ck_assert_int_ge(g.res.first_token_us, 0);
	ck_assert_int_ge(g.res.total_us, g.res.first_token_us);
	ck_assert(!llm_retryable(&g.res));

	/* the request as the server saw it */
	char *req = srv_request(s);
	char *line = req_line(req);
	ck_assert_str_eq(line, pc->stream_line);
	ck_assert_ptr_null(strstr(line, KEY));
	char *auth = req_header(req, pc->key_header);
	ck_assert_ptr_nonnull(auth);
	ck_assert_str_eq(auth, pc->key_value);
	for (int p = 0; p < LLM__MAX; p++) /* no other provider's key header */
		if (p != _i) {
			char *other = req_header(req, cases[p].key_header);
			ck_assert_ptr_null(other);
		}
	char *ver = req_header(req, "anthropic-version");
	if (pc->p == LLM_ANTHROPIC)
		ck_assert_str_eq(ver, "2023-06-01");
	else
		ck_assert_ptr_null(ver);
	char *accept = req_header(req, "Accept");
	ck_assert_str_eq(accept, "text/event-stream");
	char *ctype = req_header(req, "Content-Type");
	ck_assert_str_eq(ctype, "application/json");
	struct json_object *body = req_json(req);
	ck_assert_ptr_null(strstr(strstr(req, "\r\n\r\n"), KEY));
	if (pc->p == LLM_OPENAI) {
		assert_jpath(body, "model", "gpt-4o-mini");
		assert_jpath(body, "messages.0.role", "system");
		assert_jpath(body, "messages.0.content", "You are terse.");
		assert_jpath(body, "messages.1.role", "user");
		assert_jpath(body, "messages.1.content", "Say hello");
		assert_jpath(body, "messages.2.role", "assistant");
		assert_jpath(body, "messages.3.content", conversation[2].content);
		assert_jpath(body, "stream", "true");
		assert_jpath(body, "stream_options.include_usage", "true");
		assert_jpath(body, "max_tokens", "256");
		assert_jpath(body, "temperature", "0.25");
	} else if (pc->p == LLM_ANTHROPIC) {
		assert_jpath(body, "model", "claude-sonnet-4-5");
		assert_jpath(body, "system", "You are terse.");
		assert_jpath(body, "messages.0.role", "user");
		assert_jpath(body, "messages.0.content", "Say hello");
		assert_jpath(body, "messages.1.role", "assistant");
		assert_jpath(body, "messages.2.content", conversation[2].content);
		ck_assert_ptr_null(jpath(body, "messages.3"));
		assert_jpath(body, "stream", "true");
		assert_jpath(body, "max_tokens", "256");
	} else {
		ck_assert_ptr_null(jpath(body, "model"));
		ck_assert_ptr_null(jpath(body, "stream"));
		assert_jpath(body, "contents.0.role", "user");
		assert_jpath(body, "contents.0.parts.0.text", "Say hello");
		assert_jpath(body, "contents.1.role", "model");
		assert_jpath(body, "contents.2.parts.0.text", conversation[2].content);
		assert_jpath(body, "systemInstruction.parts.0.text", "You are terse.");
		assert_jpath(body, "generationConfig.maxOutputTokens", "256");
		assert_jpath(body, "generationConfig.temperature", "0.25");
	}
	json_object_put(body);
	free(accept);
	free(ctype);
	free(ver);
	free(auth);
	free(line);
	free(req);
	got_free(&g);
	srv_stop(s);
}
END_TEST

START_TEST(test_plain_answer)
{
	const struct pcase *pc = &cases[_i];
	struct reply r = {"HTTP/1.1 200 OK\r\nContent-Type: application/json", pc->plain, false, 0,
			  false};
	struct srv *s = srv_start(&r);
	char base[128];
	struct llm_request rq = make_req(pc, s->port, false, base, sizeof(base));
	rq.temperature = -1;
	rq.max_tokens = 0;
	struct got g;
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_OK);
	ck_assert_str_eq(g.text, "Hello world");
	ck_assert_int_eq(g.res.input_tokens, pc->plain_in);
	ck_assert_int_eq(g.res.output_tokens, pc->plain_out);
	ck_assert_str_eq(g.finish, pc->finish);
	ck_assert_int_ge(g.ntok, 1);
	char *req = srv_request(s);
	char *line = req_line(req);
	ck_assert_str_eq(line, pc->plain_line);
	char *accept = req_header(req, "Accept");
	ck_assert_str_eq(accept, "application/json");
	struct json_object *body = req_json(req);
	ck_assert_ptr_null(jpath(body, "temperature"));
	ck_assert_ptr_null(jpath(body, "generationConfig"));
	ck_assert_ptr_null(jpath(body, "stream_options"));
	if (pc->p == LLM_ANTHROPIC) /* required by the API: a default is sent */
		assert_jpath(body, "max_tokens", "1024");
	else
		ck_assert_ptr_null(jpath(body, "max_tokens"));
	if (pc->p != LLM_GEMINI)
		assert_jpath(body, "stream", "false");
	json_object_put(body);
	free(accept);
	free(line);
	free(req);
	got_free(&g);
	srv_stop(s);
}
END_TEST

START_TEST(test_verify)
{
	const struct pcase *pc = &cases[_i];
	struct reply r = {"HTTP/1.1 200 OK\r\nContent-Type: application/json",
			  "{\"data\":[{\"id\":\"m\"}],\"models\":[]}", false, 0, false};
	struct srv *s = srv_start(&r);
	char base[128];
	set_base(pc, s->port, base, sizeof(base));
	struct got g;
	got_init(&g);
	struct llm_call *c = llm_verify_new(pc->p, base, KEY, 5000, got_done, &g);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(llm_call_perform(c), LLM_OK);
	llm_call_free(c);
	ck_assert_int_eq(g.ndone, 1);
	ck_assert_int_eq(g.res.http_status, 200);
	char *req = srv_request(s);
	char *line = req_line(req);
	ck_assert_str_eq(line, pc->verify_line);
	char *auth = req_header(req, pc->key_header);
	ck_assert_str_eq(auth, pc->key_value);
	free(auth);
	free(line);
	free(req);
	got_free(&g);

	r = (struct reply){"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json",
			   pc->err_401, false, 0, false};
	srv_set(s, &r);
	got_init(&g);
	c = llm_verify_new(pc->p, base, "sk-wrong", 5000, got_done, &g);
	ck_assert_int_eq(llm_call_perform(c), LLM_E_AUTH);
	llm_call_free(c);
	ck_assert_ptr_null(strstr(g.res.detail, SECRET_TEXT));
	got_free(&g);
	srv_stop(s);
}
END_TEST

/* --- failures ------------------------------------------------------------------------------ */

/* One error answer: its status, and that nothing of the body leaks into detail. */
static void check_error(struct srv *s, const struct pcase *pc, const char *head, const char *body,
			bool stream, enum llm_status want, int want_http)
{
	struct reply r = {head, body, false, 0, false};
	srv_set(s, &r);
	char base[128];
	struct llm_request rq = make_req(pc, s->port, stream, base, sizeof(base));
	struct got g;
	got_init(&g);
	run(&rq, &g);
	ck_assert_msg(g.res.status == want, "%s %s: got %s", llm_provider_name(pc->p), head,
		      llm_status_str(g.res.status));
	ck_assert_int_eq(g.res.http_status, want_http);
	ck_assert(!g.res.got_tokens);
	ck_assert_int_eq(g.ntok, 0);
	ck_assert_str_eq(g.text, "");
	ck_assert_ptr_null(strstr(g.res.detail, SECRET_TEXT));
	ck_assert_msg(strlen(g.res.detail) > 0, "empty detail");
	got_free(&g);
}

START_TEST(test_http_errors)
{
	const struct pcase *pc = &cases[_i];
	struct reply none = {"HTTP/1.1 204 No Content", "", false, 0, false};
	struct srv *s = srv_start(&none);
	for (int stream = 0; stream <= 1; stream++) {
		check_error(s, pc, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json",
			    pc->err_401, stream, LLM_E_AUTH, 401);
		check_error(s, pc, "HTTP/1.1 403 Forbidden", "{}", stream, LLM_E_AUTH, 403);
		check_error(s, pc, "HTTP/1.1 500 Internal Server Error", pc->err_500, stream,
			    LLM_E_SERVER, 500);
		check_error(s, pc, "HTTP/1.1 503 Service Unavailable", "", stream, LLM_E_SERVER,
			    503);
		check_error(s, pc, "HTTP/1.1 529 Overloaded",
			    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
			    "\"message\":\"Overloaded " SECRET_TEXT "\"}}",
			    stream, LLM_E_SERVER, 529);
		check_error(s, pc, "HTTP/1.1 404 Not Found", "not json " SECRET_TEXT, stream,
			    LLM_E_BADREQ, 404);
		check_error(s, pc, "HTTP/1.1 422 Unprocessable Entity", "{}", stream, LLM_E_BADREQ,
			    422);
	}
	srv_stop(s);
}
END_TEST

START_TEST(test_quota_retry_after)
{
	const struct pcase *pc = &cases[_i];
	struct reply r = {"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
			  "Content-Type: application/json",
			  pc->err_429, false, 0, false};
	struct srv *s = srv_start(&r);
	char base[128];
	struct llm_request rq = make_req(pc, s->port, true, base, sizeof(base));
	struct got g;
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_QUOTA);
	ck_assert_int_eq(g.res.http_status, 429);
	ck_assert_int_eq(g.res.retry_after_ms, 3000);
	ck_assert(llm_retryable(&g.res));
	ck_assert_int_ge(llm_backoff_ms(0, 100, 1000, g.res.retry_after_ms), 3000);
	got_free(&g);

	/* retry-after-ms is understood too; the longer wait wins */
	r.head = "HTTP/1.1 429 Too Many Requests\r\nretry-after-ms: 1500\r\nRetry-After: 1";
	srv_set(s, &r);
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.retry_after_ms, 1500);
	got_free(&g);

	/* no header: -1 */
	r.head = "HTTP/1.1 429 Too Many Requests";
	srv_set(s, &r);
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_QUOTA);
	ck_assert_int_eq(g.res.retry_after_ms, -1);
	got_free(&g);
	srv_stop(s);
}
END_TEST

START_TEST(test_refused)
{
	const struct pcase *pc = &cases[_i];
	char base[128];
	struct llm_request rq = make_req(pc, closed_port(), true, base, sizeof(base));
	struct got g;
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_UNREACHABLE);
	ck_assert_int_eq(g.res.http_status, 0);
	ck_assert(!g.res.got_tokens);
	ck_assert(llm_retryable(&g.res));
	got_free(&g);
}
END_TEST

/* The connection is reset after two tokens: the caller learns that text went out. */
START_TEST(test_cut_mid_stream)
{
	const struct pcase *pc = &cases[_i];
	size_t cut = (size_t)(strstr(pc->stream, pc->third_token) - pc->stream) - 10;
	struct reply r = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", pc->stream, true,
			  cut, false};
	struct srv *s = srv_start(&r);
	char base[128];
	struct llm_request rq = make_req(pc, s->port, true, base, sizeof(base));
	struct got g;
	got_init(&g);
	tokens_seen = 0;
	reset_after_tokens = 2; /* the two whole events before the cut */
	run(&rq, &g);
	reset_after_tokens = 0;
	ck_assert_msg(g.res.status == LLM_E_UNREACHABLE || g.res.status == LLM_E_PROTOCOL, "got %s",
		      llm_status_str(g.res.status));
	ck_assert(g.res.got_tokens);
	ck_assert_str_eq(g.toks.p, "Hel|lo|");
	ck_assert_str_eq(g.text, "Hello");
	ck_assert(!llm_retryable(&g.res));
	got_free(&g);

	/* a clean end of a non-chunked stream without the end marker is a protocol error */
	r = (struct reply){"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", NULL, false, 0,
			   false};
	char *partial = strndup(pc->stream, cut);
	r.body = partial;
	srv_set(s, &r);
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_PROTOCOL);
	ck_assert(g.res.got_tokens);
	got_free(&g);
	free(partial);
	srv_stop(s);
}
END_TEST

/* Server accepts, reads the request and says nothing: first-token timeout. */
START_TEST(test_never_answers)
{
	const struct pcase *pc = &cases[_i];
	struct reply r = {NULL, NULL, false, 0, true};
	struct srv *s = srv_start(&r);
	char base[128];
	for (int stream = 0; stream <= 1; stream++) {
		struct llm_request rq = make_req(pc, s->port, stream, base, sizeof(base));
		rq.first_token_timeout_ms = 300;
		struct got g;
		got_init(&g);
		run(&rq, &g);
		ck_assert_int_eq(g.res.status, LLM_E_TIMEOUT);
		ck_assert_int_eq(g.res.http_status, 0);
		ck_assert(!g.res.got_tokens);
		ck_assert(llm_retryable(&g.res));
		got_free(&g);
	}
	srv_stop(s);
}
END_TEST

/* Headers and the events before the first token arrive, then silence: still a first-token
 * timeout, retryable. Silence after two tokens: the idle timeout, not retryable. */
START_TEST(test_stalled_streams)
{
	const struct pcase *pc = &cases[_i];
	size_t before_first = (size_t)(strstr(pc->stream, "Hel") - pc->stream) - 10;
	struct reply r = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", pc->stream, true,
			  before_first, true};
	struct srv *s = srv_start(&r);
	char base[128];
	struct llm_request rq = make_req(pc, s->port, true, base, sizeof(base));
	rq.first_token_timeout_ms = 300;
	struct got g;
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_TIMEOUT);
	ck_assert_int_eq(g.res.http_status, 200);
	ck_assert(!g.res.got_tokens);
	ck_assert(llm_retryable(&g.res));
	got_free(&g);

	r.stop_after = (size_t)(strstr(pc->stream, pc->third_token) - pc->stream) - 10;
	srv_set(s, &r);
	rq.idle_timeout_ms = 300;
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_TIMEOUT);
	ck_assert(g.res.got_tokens);
	ck_assert_str_eq(g.text, "Hello");
	ck_assert(!llm_retryable(&g.res));
	got_free(&g);
	srv_stop(s);
}
END_TEST

START_TEST(test_garbage)
{
	const struct pcase *pc = &cases[_i];
	static const struct {
		const char *body; /* a 200 answer */
		bool stream;      /* asked as a stream */
	} bad[] = {
		{"<html><body>502 gateway</body></html>", false},
		{"{\"unexpected\": true}", false},
		{"", false},
		{"this is not an event stream\n", true},
		{"data: {not json\n\n", true},
		{"<html><body>hello</body></html>", true},
	};
	struct reply r = {"HTTP/1.1 200 OK", NULL, false, 0, false};
	struct srv *s = srv_start(&r);
	char base[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r.body = bad[i].body;
		srv_set(s, &r);
		struct llm_request rq = make_req(pc, s->port, bad[i].stream, base, sizeof(base));
		struct got g;
		got_init(&g);
		run(&rq, &g);
		ck_assert_msg(g.res.status == LLM_E_PROTOCOL, "case %zu: %s", i,
			      llm_status_str(g.res.status));
		ck_assert(!llm_retryable(&g.res));
		got_free(&g);
	}
	srv_stop(s);
}
END_TEST

START_TEST(test_cancel)
{
	const struct pcase *pc = &cases[_i];
	struct reply r = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", pc->stream, true, 0,
			  false};
	struct srv *s = srv_start(&r);
	char base[128];
	struct llm_request rq = make_req(pc, s->port, true, base, sizeof(base));
	struct got g;
	got_init(&g);
	g.cancel_at = 2;
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_CANCELLED);
	ck_assert_str_eq(g.toks.p, "Hel|lo|");
	ck_assert(g.res.got_tokens);
	ck_assert(!llm_retryable(&g.res));
	got_free(&g);

	/* the whole answer of a non-streamed call can be refused too */
	r = (struct reply){"HTTP/1.1 200 OK", pc->plain, false, 0, false};
	srv_set(s, &r);
	rq.stream = false;
	got_init(&g);
	g.cancel_at = 1;
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_CANCELLED);
	got_free(&g);
	srv_stop(s);
}
END_TEST

/* Errors only some providers send. */
START_TEST(test_provider_specific_errors)
{
	struct reply none = {"HTTP/1.1 204 No Content", "", false, 0, false};
	struct srv *s = srv_start(&none);
	/* Gemini answers a bad key with 400 INVALID_ARGUMENT + reason API_KEY_INVALID */
	check_error(s, &cases[LLM_GEMINI], "HTTP/1.1 400 Bad Request",
		    "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid "
		    "API key. " SECRET_TEXT "\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{"
		    "\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":"
		    "\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}",
		    false, LLM_E_AUTH, 400);
	check_error(
		s, &cases[LLM_GEMINI], "HTTP/1.1 400 Bad Request",
		"{\"error\":{\"code\":400,\"message\":\"Invalid value at 'generation_config' " SECRET_TEXT
		"\",\"status\":\"INVALID_ARGUMENT\"}}",
		false, LLM_E_BADREQ, 400);
	check_error(s, &cases[LLM_GEMINI], "HTTP/1.1 403 Forbidden",
		    "{\"error\":{\"code\":403,\"message\":\"" SECRET_TEXT "\","
		    "\"status\":\"PERMISSION_DENIED\"}}",
		    true, LLM_E_AUTH, 403);
	check_error(s, &cases[LLM_OPENAI], "HTTP/1.1 400 Bad Request",
		    "{\"error\":{\"message\":\"" SECRET_TEXT
		    "\",\"type\":\"invalid_request_error\","
		    "\"param\":\"model\",\"code\":null}}",
		    true, LLM_E_BADREQ, 400);
	check_error(s, &cases[LLM_OPENAI], "HTTP/1.1 429 Too Many Requests", cases[0].err_429,
		    false, LLM_E_QUOTA, 429);

	/* Anthropic: an error event inside a 200 stream, after one token */
	struct reply r = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream",
			  ANT_DELTA("Hel")
				  ANT_EV("error", "{\"type\":\"error\",\"error\":{\"type\":"
						  "\"overloaded_error\",\"message\":"
						  "\"Overloaded " SECRET_TEXT "\"}}"),
			  true, 0, false};
	srv_set(s, &r);
	char base[128];
	struct llm_request rq = make_req(&cases[LLM_ANTHROPIC], s->port, true, base, sizeof(base));
	struct got g;
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_SERVER);
	ck_assert(g.res.got_tokens);
	ck_assert(!llm_retryable(&g.res));
	got_free(&g);

	/* OpenAI: an error chunk in a 200 stream */
	r.body =
		"data: {\"error\":{\"message\":\"" SECRET_TEXT "\",\"type\":\"server_error\"}}\n\n";
	srv_set(s, &r);
	rq = make_req(&cases[LLM_OPENAI], s->port, true, base, sizeof(base));
	got_init(&g);
	run(&rq, &g);
	ck_assert_int_eq(g.res.status, LLM_E_SERVER);
	ck_assert(llm_retryable(&g.res));
	got_free(&g);
	srv_stop(s);
}
END_TEST

/* --- many calls on one multi --------------------------------------------------------------- */

/* Streams back "echo", ":" and the (only) user message as three tokens. */
static void echo_openai(const char *body, size_t len, struct buf *out)
{
	char *copy = strndup(body, len);
	struct json_object *o = json_tokener_parse(copy);
	const char *last = jpath(o, "messages.0.content");
	static const char *const pieces[] = {"echo", ":", NULL};
	for (int i = 0; pieces[i]; i++)
		buf_printf(out, OAI_CHUNK("{\"content\":\"%s\"}", "null"), pieces[i]);
	buf_printf(out, OAI_CHUNK("{\"content\":\"%s\"}", "\"stop\""), last ? last : "?");
	buf_puts(out, "data: [DONE]\n\n");
	json_object_put(o);
	free(copy);
}

START_TEST(test_multi_concurrent)
{
	enum { N = 5 };
	struct reply r = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream", NULL, true, 0,
			  false};
	struct srv *s = srv_start(&r);
	pthread_mutex_lock(&s->mu);
	s->echo = echo_openai;
	pthread_mutex_unlock(&s->mu);
	CURLM *m = curl_multi_init();
	struct llm_call *calls[N];
	struct got g[N];
	char base[128];
	char content[N][32];
	struct llm_msg msg[N];
	for (int i = 0; i < N; i++) {
		snprintf(content[i], sizeof(content[i]), "call-%d", i);
		msg[i] = (struct llm_msg){"user", content[i]};
		struct llm_request rq =
			make_req(&cases[LLM_OPENAI], s->port, true, base, sizeof(base));
		rq.system = NULL;
		rq.msgs = &msg[i];
		rq.nmsgs = 1;
		got_init(&g[i]);
		calls[i] = llm_call_new(&rq, got_token, got_done, &g[i]);
		ck_assert_ptr_nonnull(calls[i]);
		ck_assert_int_eq(curl_multi_add_handle(m, llm_call_easy(calls[i])), CURLM_OK);
	}
	int running = N, finished = 0;
	while (finished < N) {
		ck_assert_int_eq(curl_multi_perform(m, &running), CURLM_OK);
		CURLMsg *msgp;
		int left;
		while ((msgp = curl_multi_info_read(m, &left)) != NULL) {
			if (msgp->msg != CURLMSG_DONE)
				continue;
			char *priv = NULL;
			CURL *e = msgp->easy_handle;
			CURLcode cc = msgp->data.result;
			curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
			struct llm_call *c = (struct llm_call *)priv;
			ck_assert_ptr_nonnull(c);
			curl_multi_remove_handle(m, e);
			llm_call_done(c, cc);
			finished++;
		}
		if (finished < N)
			ck_assert_int_eq(curl_multi_poll(m, NULL, 0, 1000, NULL), CURLM_OK);
	}
	for (int i = 0; i < N; i++) {
		char want[64];
		snprintf(want, sizeof(want), "echo:call-%d", i);
		ck_assert_int_eq(g[i].ndone, 1);
		ck_assert_int_eq(g[i].res.status, LLM_OK);
		ck_assert_str_eq(g[i].text, want);
		snprintf(want, sizeof(want), "echo|:|call-%d|", i);
		ck_assert_str_eq(g[i].toks.p, want);
		llm_call_free(calls[i]);
		got_free(&g[i]);
	}
	pthread_mutex_lock(&s->mu);
	int nreq = s->nreq, max_active = s->max_active;
	pthread_mutex_unlock(&s->mu);
	ck_assert_int_eq(nreq, N);
	ck_assert_int_ge(max_active, 2); /* they really overlapped */
	curl_multi_cleanup(m);
	srv_stop(s);
}
END_TEST

/* The first-token timeout also fires in a multi that only wakes up for curl's own timers. */
START_TEST(test_multi_timeout)
{
	struct reply r = {NULL, NULL, false, 0, true};
	struct srv *s = srv_start(&r);
	CURLM *m = curl_multi_init();
	char base[128];
	struct llm_request rq = make_req(&cases[LLM_ANTHROPIC], s->port, true, base, sizeof(base));
	rq.first_token_timeout_ms = 300;
	struct got g;
	got_init(&g);
	struct llm_call *c = llm_call_new(&rq, got_token, got_done, &g);
	curl_multi_add_handle(m, llm_call_easy(c));
	for (int running = 1; running;) {
		long wait_ms = -1;
		curl_multi_perform(m, &running);
		curl_multi_timeout(m, &wait_ms);
		if (running)
			curl_multi_poll(m, NULL, 0, wait_ms < 0 ? 5000 : (int)wait_ms, NULL);
	}
	CURLMsg *msgp;
	int left;
	while ((msgp = curl_multi_info_read(m, &left)) != NULL) {
		curl_multi_remove_handle(m, msgp->easy_handle);
		llm_call_done(c, msgp->data.result);
	}
	ck_assert_int_eq(g.ndone, 1);
	ck_assert_int_eq(g.res.status, LLM_E_TIMEOUT);
	llm_call_free(c);
	got_free(&g);
	curl_multi_cleanup(m);
	srv_stop(s);
}
END_TEST

/* --- pure functions ------------------------------------------------------------------------ */

START_TEST(test_names)
{
	ck_assert_str_eq(llm_provider_name(LLM_OPENAI), "openai");
	ck_assert_str_eq(llm_provider_name(LLM_ANTHROPIC), "anthropic");
	ck_assert_str_eq(llm_provider_name(LLM_GEMINI), "gemini");
	ck_assert_str_eq(llm_provider_name(LLM__MAX), "?");
	ck_assert_int_eq(llm_provider_parse("openai"), LLM_OPENAI);
	ck_assert_int_eq(llm_provider_parse("Anthropic"), LLM_ANTHROPIC);
	ck_assert_int_eq(llm_provider_parse("claude"), LLM_ANTHROPIC);
	ck_assert_int_eq(llm_provider_parse("gemini"), LLM_GEMINI);
	ck_assert_int_eq(llm_provider_parse("GOOGLE"), LLM_GEMINI);
	ck_assert_int_eq(llm_provider_parse("mistral"), LLM__MAX);
	ck_assert_int_eq(llm_provider_parse(""), LLM__MAX);
	ck_assert_int_eq(llm_provider_parse(NULL), LLM__MAX);
	static const char *const want[LLM__SMAX] = {"ok",      "auth",     "quota",
						    "badreq",  "server",   "unreachable",
						    "timeout", "protocol", "cancelled"};
	for (int s = 0; s < LLM__SMAX; s++)
		ck_assert_str_eq(llm_status_str((enum llm_status)s), want[s]);
	ck_assert_str_eq(llm_status_str(LLM__SMAX), "?");
}
END_TEST

START_TEST(test_invalid_requests)
{
	char base[128];
	struct llm_request ok = make_req(&cases[LLM_GEMINI], 1, true, base, sizeof(base));
	struct llm_call *c = llm_call_new(&ok, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(c);
	llm_call_free(c);
	llm_call_free(NULL);
	ck_assert_ptr_null(llm_call_new(NULL, NULL, NULL, NULL));

	struct llm_msg bad_role[] = {{"system", "x"}};
	struct llm_msg no_content[] = {{"user", NULL}};
	struct llm_request rq;
#define REFUSED(field, value)                                            \
	do {                                                             \
		rq = ok;                                                 \
		rq.field = value;                                        \
		ck_assert_ptr_null(llm_call_new(&rq, NULL, NULL, NULL)); \
	} while (0)
	REFUSED(provider, LLM__MAX);
	REFUSED(base_url, NULL);
	REFUSED(base_url, "");
	REFUSED(model, NULL);
	REFUSED(model, "");
	REFUSED(model, "../../v1/files?x=");   /* goes into Gemini's path */
	REFUSED(api_key, "sk-1\r\nX-Evil: 1"); /* header injection */
	REFUSED(temperature, INFINITY);
	REFUSED(msgs, NULL);
	REFUSED(nmsgs, 0);
#undef REFUSED
	rq = ok;
	rq.msgs = bad_role;
	rq.nmsgs = 1;
	ck_assert_ptr_null(llm_call_new(&rq, NULL, NULL, NULL));
	rq.msgs = no_content;
	ck_assert_ptr_null(llm_call_new(&rq, NULL, NULL, NULL));
	ck_assert_ptr_null(llm_verify_new(LLM__MAX, "http://x", NULL, 0, NULL, NULL));
	ck_assert_ptr_null(llm_verify_new(LLM_OPENAI, NULL, NULL, 0, NULL, NULL));
	ck_assert_ptr_null(llm_verify_new(LLM_OPENAI, "http://x", "a\nb", 0, NULL, NULL));
	/* no key at all is fine (local servers) */
	ok.api_key = NULL;
	ok.provider = LLM_OPENAI;
	c = llm_call_new(&ok, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(c);
	llm_call_free(c);
}
END_TEST

START_TEST(test_backoff)
{
	for (int attempt = 0; attempt < 70; attempt++) {
		int64_t ceil = 100;
		for (int i = 0; i < attempt && ceil < 5000; i++)
			ceil *= 2;
		if (ceil > 5000)
			ceil = 5000;
		int64_t lo = INT64_MAX, hi = 0;
		for (int k = 0; k < 200; k++) {
			int64_t d = llm_backoff_ms(attempt, 100, 5000, -1);
			ck_assert_int_ge(d, 0);
			ck_assert_int_le(d, ceil);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		ck_assert_msg(hi > lo, "attempt %d: no jitter", attempt); /* 200 draws differ */
	}
	/* Retry-After is a floor, even above the cap */
	for (int k = 0; k < 100; k++) {
		ck_assert_int_ge(llm_backoff_ms(0, 100, 5000, 3000), 3000);
		ck_assert_int_eq(llm_backoff_ms(3, 100, 5000, 60000), 60000);
	}
	ck_assert_int_eq(llm_backoff_ms(5, 0, 5000, -1), 0);
	ck_assert_int_eq(llm_backoff_ms(5, 100, 0, -1), 0);
	ck_assert_int_le(llm_backoff_ms(-3, 100, 5000, -1), 100);
	ck_assert_int_le(llm_backoff_ms(1 << 30, INT64_MAX / 2, INT64_MAX, -1), INT64_MAX);
}
END_TEST

START_TEST(test_retryable)
{
	static const bool want[LLM__SMAX] = {
		[LLM_E_QUOTA] = true,
		[LLM_E_SERVER] = true,
		[LLM_E_UNREACHABLE] = true,
		[LLM_E_TIMEOUT] = true,
	};
	for (int s = 0; s < LLM__SMAX; s++) {
		struct llm_result r = {.status = (enum llm_status)s, .retry_after_ms = -1};
		ck_assert_msg(llm_retryable(&r) == want[s], "%s", llm_status_str(r.status));
		r.got_tokens = true;
		ck_assert_msg(!llm_retryable(&r), "%s after tokens", llm_status_str(r.status));
	}
	ck_assert(!llm_retryable(NULL));
}
END_TEST

static Suite *llm_suite(void)
{
	Suite *s = suite_create("llm");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_invalid_requests);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_retryable);
	tcase_add_loop_test(tc, test_stream_answer, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_plain_answer, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_verify, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_http_errors, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_quota_retry_after, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_refused, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_cut_mid_stream, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_never_answers, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_stalled_streams, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_garbage, 0, LLM__MAX);
	tcase_add_loop_test(tc, test_cancel, 0, LLM__MAX);
	tcase_add_test(tc, test_provider_specific_errors);
	tcase_add_test(tc, test_multi_concurrent);
	tcase_add_test(tc, test_multi_timeout);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) /* the program's job */
		return EXIT_FAILURE;
	SRunner *sr = srunner_create(llm_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
