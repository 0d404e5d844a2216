/* agentd.c - ideaforge-agentd: runs the agent jobs of the durable queue (sql/0004) and serves
 * their event streams, on one libevent loop (ARCHITECTURE.md section 1, issue 11).
 *
 * One thread. The loop holds:
 *   - the HTTP server (evhttp) that nginx reaches through its internal /_agentd/ location
 *     after the API answered X-Accel-Redirect: event streams (SSE), waits for a job's result,
 *     /status and /metrics;
 *   - every provider call (lib/llm over libcurl's multi socket API, lib/evcurl): a token is
 *     written to the job's streams in the write callback that brought its bytes;
 *   - a dedicated libpq connection used non-blocking for LISTEN agent_jobs and
 *     agent_jobs_cancel (PQsocket in the loop, PQconsumeInput, PQnotifies);
 *   - timers: lease renewal (lease/3), lease expiry (lease/2), event batching (100 ms),
 *     stream heartbeats, and the 200 ms polling of a job that runs in another agentd;
 *   - the V0 follow-up of design mockups (see "V0 follow-up" below): a timer claims the due
 *     rows of design_mockups, and each check is a lib/httpc transfer on the same curl multi.
 * The other SQL (claim, renewal, events, completion) runs blocking on a small lib/db pool:
 * each is one short statement on a local database, bounded by db_statement_timeout_ms, and
 * there are few of them (one renewal statement for all running jobs, events inserted in
 * batches of 100 ms, completion in one transaction).
 *
 * Runs: a job's events are numbered per job (seq) and tagged with the run that produced them
 * (agent_job_events.attempt). A run is the attempt number, or one more than the last run that
 * stored events when that is larger (a job handed back on SIGTERM gives its attempt back, but
 * its next run must still be told apart). Event ids on the wire are "<run>:<seq>".
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "../lib/arena.h"
#include "../lib/buf.h"
#include "../lib/ctx.h"
#include "../lib/db.h"
#include "../lib/evcurl.h"
#include "../lib/httpc.h"
#include "../lib/jx.h"
#include "../lib/kv.h"
#include "../lib/llm.h"
#include "../lib/log.h"
#include "../lib/sse.h"
#include "../lib/sysd.h"
#include "agents.h"
#include "ai.h"
#include "config.h"
#include "design.h"
#include "jobs.h"
#include "kb.h"
#include "keys.h"
#include "prd_html.h"
#include "../lib/md.h"

#define POLL_MS 200       /* a job running elsewhere: its stored events, polled */
#define FLUSH_MS 100      /* events reach agent_job_events at most this late */
#define RETRY_BASE_MS 500 /* provider retry backoff (llm_backoff_ms) */
#define RETRY_CAP_MS 8000
#define QUERY_PREVIEW_CHARS 200 /* agent_start.query (API.md 5.7) */
#define TRUNCATED_SUFFIX "\n\n[Response truncated - content exceeded length limit]"
#define JOB_MAX_RUNS (AGENT_MAX_SUPPORTING + 2) /* provider calls of one job besides the answer */
#define CACHE_MAX_BYTES (256 << 10)             /* a cached answer larger than this is not stored */
#define KV_CONNECT_TIMEOUT_MS 100 /* Redis on the loop: short, and backed off when down */
#define KV_COMMAND_TIMEOUT_MS 50

enum job_kind {
	JK_MULTI,
	JK_PHASE,
	JK_AGENT,
	JK_SUMMARIZE,
	JK_SCORE,
	JK_PRD,
	JK_REVIEW,
	JK_EXPORT,
	JK__MAX
};
static const char *const job_kind_names[JK__MAX] = {
	[JK_MULTI] = "multi_agent",   [JK_PHASE] = "phase_form_help", [JK_AGENT] = "agent",
	[JK_SUMMARIZE] = "summarize", [JK_SCORE] = "score",           [JK_PRD] = "generate_prd",
	[JK_REVIEW] = "review_prd",   [JK_EXPORT] = "export_prd"};

/* The AI features of API.md 1.10: one agent, its answer stored in a table of its own. */
static bool is_feature(int kind)
{
	return kind == JK_SUMMARIZE || kind == JK_SCORE || kind == JK_PRD;
}

/* review-prd and export-prd (API.md 1.11, sql/0008): the export agent on the deterministic
 * review or report the API computed; the job's result is the route's answer. */
static bool is_export(int kind)
{
	return kind == JK_REVIEW || kind == JK_EXPORT;
}

/* ------------------------------------------------------------------------------ metrics */

static const int64_t hist_bounds_ms[] = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};
#define NBOUNDS (sizeof(hist_bounds_ms) / sizeof(hist_bounds_ms[0]))

struct hist {
	uint64_t le[NBOUNDS + 1]; /* per bucket (not cumulative); last is +Inf */
	double sum_s;             /* sum of observations, seconds */
	uint64_t count;           /* observations */
};

struct metrics {
	uint64_t jobs_claimed;               /* runs started here */
	uint64_t jobs_completed;             /* completed here */
	uint64_t jobs_failed;                /* failed here (or expired) */
	uint64_t jobs_retried;               /* runs that took a job over (run > 1) */
	uint64_t jobs_cancelled;             /* stopped by a cancel */
	uint64_t jobs_handed_back;           /* given back at shutdown */
	uint64_t calls[LLM__MAX][LLM__SMAX]; /* provider calls by outcome */
	uint64_t call_retries[LLM__MAX];     /* calls retried */
	uint64_t http_status[LLM__MAX][6];   /* by status class: 0 none, 1xx..5xx */
	struct hist latency[LLM__MAX];       /* whole call */
	struct hist first_token[LLM__MAX];   /* start to first token */
	uint64_t design_checks[HTTPC__MAX];  /* V0 checks by outcome */
	uint64_t design_timeouts;            /* V0 generations ended as timeout here */
};

static void hist_add(struct hist *h, int64_t us)
{
	size_t i = 0;
	while (i < NBOUNDS && us > hist_bounds_ms[i] * 1000)
		i++;
	h->le[i]++;
	h->sum_s += (double)us / 1e6;
	h->count++;
}

/* ------------------------------------------------------------------------------ types */

struct agentd;
struct job;

/* One event of a job, as sent and stored. */
struct jev {
	int64_t seq;      /* per job */
	const char *name; /* event name (static) */
	char *named;      /* data JSON (malloc) */
	char *dataform;   /* the data-only form (API.md 1.9), NULL when that form skips it */
	bool chunk;       /* agent_chunk: streamed from memory, never stored */
};

enum client_kind { CL_STREAM, CL_WAIT };
enum shape { SHAPE_KIND, SHAPE_MULTI, SHAPE_AGENT, SHAPE_DESIGN, SHAPE_FILE, SHAPE__MAX };

/* A request held open: an event stream or a wait for the result. */
struct client {
	struct agentd *d;           /* owner */
	enum client_kind kind;      /* stream or wait */
	struct evhttp_request *req; /* the request (libevent's) */
	char job_id[40];            /* the job */
	struct job *job;            /* running here, or NULL: polled from the database */
	bool started;               /* stream: headers sent */
	bool dataform;              /* format=data (or design: the same events, API.md 1.13) */
	enum shape shape;           /* wait: the result's shape */
	int run;                    /* run of the last event sent (or of Last-Event-ID) */
	int64_t seq;                /* seq of the last event sent */
	struct event *hb;           /* heartbeat timer (streams) */
	struct event *poll;         /* database polling (job elsewhere) */
	struct client *prev, *next; /* in job->clients or d->remote */
};

/* One agent's provider call (with its retries) inside a job. */
struct arun {
	struct job *j;               /* owner */
	const struct agent_def *def; /* the agent */
	bool primary;                /* the answering agent (its tokens are streamed) */
	bool used;                   /* slot in use */
	struct llm_call *call;       /* in flight, or NULL */
	struct event *retry;         /* backoff timer, also a failed start */
	bool start_failed;           /* the call could not be built */
	int retries;                 /* retries done */
	const char *system;          /* system prompt (job arena) */
	const char *prompt;          /* user message (job arena) */
	const struct llm_msg *msgs;  /* or the whole conversation (kind agent) */
	size_t nmsgs;                /* entries in msgs */
	const char *model;           /* model name */
	bool finished, ok;           /* outcome */
	enum llm_status status;      /* of the last call */
	char *text;                  /* answer (malloc) */
	int64_t in_tok, out_tok;     /* tokens reported, -1 unknown */
	int64_t start_us;            /* first call start (monotonic) */
	int64_t total_us;            /* start to end, retries included */
	int stage;                   /* the stage of the mode it runs in */
	enum { AR_CONSULT, AR_OPEN, AR_CRITIQUE, AR_ANSWER } role; /* what the call is for */
	const struct arun *about; /* AR_CRITIQUE: the answer it critiques */
	const char *from;         /* interaction.from_agent (static or job arena) */
	const char *cache_key;    /* response cache key (job arena), NULL: not cached */
	char *cached;             /* a cache hit's answer until it is delivered (malloc) */
	bool cache_hit;           /* answered from the cache: no provider call */
};

struct job {
	struct agentd *d;                 /* owner */
	struct job *prev, *next;          /* d->jobs */
	char id[40];                      /* agent_jobs.id */
	enum job_kind kind;               /* what it runs */
	struct principal who;             /* its owner: user and tenant */
	char product_id[40];              /* "" when none */
	struct json_object *request;      /* the API body as stored */
	int attempts;                     /* agent_jobs.attempts after the claim */
	int run;                          /* run number (see the file comment) */
	int64_t next_seq;                 /* seq of the next event */
	struct arena *a;                  /* the job's memory; keys wiped with it */
	struct ctx c;                     /* its context (ai_choose, keys) */
	struct ai_choice choice;          /* provider and key, for this job only */
	struct agent_plan plan;           /* agents */
	struct arun runs[JOB_MAX_RUNS];   /* the other calls of the mode */
	int nruns;                        /* used entries of runs */
	enum agent_mode mode;             /* how the agents work together */
	int stage, nstages;               /* the running stage, the stages */
	int stage_left;                   /* calls of the running stage not finished */
	struct arun prim;                 /* the answering agent */
	const char *query;                /* the question (job arena) */
	const char *context;              /* the bounded context block, or NULL */
	bool declined;                    /* answered by the NLU gate, no provider */
	bool store_chunks;                /* agent_chunk stored too (a whole answer
					   * in one chunk: cache hit, guidance) */
	const char *kb_text;              /* knowledge excerpts for the prompts, or NULL */
	bool agent_stream;                /* kind agent asked to stream (request.stream:
					   * a design prompt's stream form) */
	struct json_object *kb_sources;   /* [{id, title, rank}] of the excerpts, or NULL */
	struct json_object *interactions; /* interaction events' data, for the result */
	struct jev *evs;                  /* this run's events */
	size_t nevs, cap;                 /* used, allocated */
	size_t nflushed;                  /* evs[0..nflushed) stored (or chunks) */
	struct event *flush;              /* batching timer */
	struct client *clients;           /* streams and waits attached here */
	bool cancelled;                   /* stopped by a cancel */
	bool ending;                      /* job_end started */
	int64_t start_us;                 /* claim time (monotonic) */
	int64_t cap_chars;                /* phase help: cap of what is sent */
	int64_t sent_chars;               /* phase help: characters sent */
	int64_t words;                    /* phase help: words sent */
	bool capped;                      /* phase help: the cap was reached */
	struct buf sent;                  /* phase help: the text sent (malloc) */
};

struct agentd {
	struct event_base *base;      /* the loop */
	const struct srv_config *srv; /* configuration (server section) */
	const struct app_config *cfg; /* configuration (ours) */
	struct db_pool *pool;         /* SQL */
	struct evcurl *ec;            /* provider calls */
	struct kv *kv;                /* Redis: the response cache (NULL: no cache) */
	struct kv_shared kvs;         /* its up/down state */
	struct evhttp *http;          /* our HTTP server */
	char owner[128];              /* lease_owner: host:pid:start */
	int64_t started_us;           /* monotonic start */
	PGconn *lconn;                /* LISTEN connection */
	struct event *lev;            /* its socket */
	struct event *lretry;         /* reconnect timer */
	struct event *renew;          /* lease renewal timer */
	struct event *expire;         /* lease expiry timer */
	struct event *sigs[2];        /* SIGTERM, SIGINT */
	struct job *jobs;             /* running here */
	int nrunning;                 /* entries in jobs */
	struct client *remote;        /* clients of jobs running elsewhere */
	int nstreams, nwaits;         /* open clients */
	bool stopping;                /* SIGTERM seen */
	struct buf out;               /* scratch for SSE text */
	struct metrics m;             /* figures for /metrics */
	struct follow *follows;       /* V0 checks in flight */
	int nfollows;                 /* entries in follows */
	struct event *follow_tick;    /* V0 follow-up timer */
};

/* An SQL operation on the pool: its own arena and context, ended with op_end. */
struct op {
	struct arena *a;
	struct ctx c;
};

static void op_begin(struct op *o, struct agentd *d, const char *rid)
{
	o->a = arena_new(8192);
	ctx_init(&o->c, o->a, d->pool, rid);
}

static void op_end(struct op *o)
{
	db_done(&o->c);
	arena_free(o->a);
	o->a = NULL;
}

/* ------------------------------------------------------------------------------ helpers */

static void iso_now(char out[40])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%06ld", ts.tv_nsec / 1000);
}

static struct json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/* A number as JSON writes it short ("0.1", not "0.10000000000000001"). */
static struct json_object *jnum(double v)
{
	char t[32];
	snprintf(t, sizeof(t), "%.6g", v);
	return json_object_new_double_s(v, t);
}

static char *json_dup(struct json_object *o)
{
	return strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Code points in n bytes of UTF-8. */
static int64_t utf8_chars(const char *s, size_t n)
{
	int64_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xC0) != 0x80;
	return k;
}

/* Bytes of the first max code points of s (n bytes). */
static size_t utf8_prefix(const char *s, size_t n, int64_t max)
{
	int64_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (k == max)
				return i;
			k++;
		}
	}
	return n;
}

static int64_t count_words(const char *s, size_t n, bool *in_word)
{
	int64_t w = 0;
	for (size_t i = 0; i < n; i++) {
		bool sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
		if (!sp && !*in_word)
			w++;
		*in_word = !sp;
	}
	return w;
}

static const char *provider_title(enum llm_provider p)
{
	static const char *const t[LLM__MAX] = {"OpenAI", "Anthropic", "Google Gemini"};
	return p < LLM__MAX ? t[p] : "The provider";
}

/* HTTP status of a provider outcome (API.md 5.6). */
static int status_of(enum llm_status st)
{
	switch (st) {
	case LLM_E_AUTH: return 401;
	case LLM_E_QUOTA: return 429;
	case LLM_E_UNREACHABLE:
	case LLM_E_TIMEOUT:
	case LLM_E_SERVER:
	case LLM_E_PROTOCOL: return 502;
	default: return 500;
	}
}

/* ------------------------------------------------------------------------------ clients */

static void client_poll_now(struct client *cl);
static void job_end(struct job *j, bool ok, int status, const char *detail, const char *etype);
static void claim_more(struct agentd *d);

static void list_add(struct client **head, struct client *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

static void list_del(struct client **head, struct client *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (*head == c)
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void client_unlink(struct client *cl)
{
	if (cl->job)
		list_del(&cl->job->clients, cl);
	else
		list_del(&cl->d->remote, cl);
	cl->job = NULL;
}

static void client_free(struct client *cl)
{
	if (cl->hb)
		event_free(cl->hb);
	if (cl->poll)
		event_free(cl->poll);
	if (cl->kind == CL_STREAM)
		cl->d->nstreams--;
	else
		cl->d->nwaits--;
	free(cl);
}

/* Ends a client: the stream's last chunk, or nothing more for a wait (answered already). */
static void client_close(struct client *cl)
{
	client_unlink(cl);
	struct evhttp_connection *evcon = evhttp_request_get_connection(cl->req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	if (cl->kind == CL_STREAM) {
		if (cl->started)
			evhttp_send_reply_end(cl->req);
		else
			evhttp_send_reply(cl->req, 503, "Service Unavailable", NULL);
	}
	client_free(cl);
}

/* The peer went away: libevent detached the request from its connection; ending it frees
 * it. The job goes on. */
static void client_on_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	struct client *cl = arg;
	client_unlink(cl);
	if (cl->kind == CL_STREAM && cl->started)
		evhttp_send_reply_end(cl->req);
	else
		evhttp_send_reply(cl->req, 499, "Client Closed Request", NULL);
	client_free(cl);
}

static void reply_json(struct evhttp_request *req, int status, const char *body)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, body, strlen(body));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_send_reply(req, status, http_reason(status), b);
	evbuffer_free(b);
}

static void reply_detail(struct evhttp_request *req, int status, const char *detail)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "detail", json_object_new_string(detail));
	reply_json(req, status, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* A filename for Content-Disposition: only [A-Za-z0-9._-] of name (the API made it so
 * already; checked again because it reaches a header), at most 160 bytes. Static storage of
 * the caller (out). */
static const char *safe_filename(const char *name, char *out, size_t n)
{
	size_t k = 0;
	for (const char *c = name ? name : ""; *c && k + 1 < n; c++)
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		    (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-')
			out[k++] = *c;
	out[k] = '\0';
	return k ? out : "PRD";
}

/* A stored document ({filename, content_type, document}, export_file) as the download of
 * API.md 1.11: its own Content-Type, Content-Disposition: attachment and Cache-Control:
 * no-store (nginx adds no Cache-Control to the /_agentd/ location). */
static void reply_file(struct evhttp_request *req, const char *result)
{
	struct json_object *r = jx_parse(result, strlen(result), 8);
	const char *doc = jx_get_str(r, "document");
	const char *type = jx_get_str(r, "content_type");
	if (!doc || !type ||
	    (strcmp(type, "text/html; charset=utf-8") != 0 &&
	     strcmp(type, "text/markdown; charset=utf-8") != 0)) {
		json_object_put(r);
		reply_detail(req, 500, "Internal server error");
		return;
	}
	char fname[168], disp[200];
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"",
		 safe_filename(jx_get_str(r, "filename"), fname, sizeof(fname)));
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Content-Disposition", disp);
	evhttp_add_header(h, "Cache-Control", "no-store");
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, doc, strlen(doc));
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
	json_object_put(r);
}

/* Answers a wait and ends it: a success of shape file as the download, anything else as
 * JSON. */
static void client_answer(struct client *cl, int status, const char *body_json)
{
	client_unlink(cl);
	struct evhttp_connection *evcon = evhttp_request_get_connection(cl->req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	if (cl->shape == SHAPE_FILE && status == 200)
		reply_file(cl->req, body_json);
	else
		reply_json(cl->req, status, body_json);
	client_free(cl);
}

static void client_answer_detail(struct client *cl, int status, const char *detail)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "detail", json_object_new_string(detail));
	client_answer(cl, status, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* The stored result in the shape the wait asked for: an AgentResponse from a multi-agent
 * result when shape=agent. Returns malloc text. */
static char *shape_result(const char *result, enum shape shape)
{
	struct json_object *r = jx_parse(result, strlen(result), 64);
	if (!r)
		return strdup(result);
	if (shape == SHAPE_AGENT && jx_has(r, "primary_agent")) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "agent_type", jstr(jx_get_str(r, "primary_agent")));
		json_object_object_add(o, "response", jstr(jx_get_str(r, "response")));
		struct json_object *md = jx_get(r, "metadata");
		json_object_object_add(o, "metadata",
				       md ? json_object_get(md) : json_object_new_object());
		json_object_object_add(o, "timestamp", jstr(jx_get_str(r, "timestamp")));
		char *s = json_dup(o);
		json_object_put(o);
		json_object_put(r);
		return s;
	}
	if (shape == SHAPE_DESIGN) {
		/* a design prompt (API.md 1.13): {prompt, provider, product_id} */
		struct json_object *o = json_object_new_object();
		struct json_object *md = jx_get(r, "metadata");
		json_object_object_add(o, "prompt", jstr(jx_get_str(r, "response")));
		json_object_object_add(o, "provider", jstr(jx_get_str(r, "agent_type")));
		const char *pid = jx_get_str(md, "product_id");
		json_object_object_add(o, "product_id", pid ? jstr(pid) : NULL);
		json_object_object_add(o, "is_existing", json_object_new_boolean(false));
		char *s = json_dup(o);
		json_object_put(o);
		json_object_put(r);
		return s;
	}
	json_object_put(r);
	return strdup(result);
}

static void client_start_stream(struct client *cl)
{
	if (cl->started)
		return;
	struct evkeyvalq *h = evhttp_request_get_output_headers(cl->req);
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	evhttp_send_reply_start(cl->req, 200, "OK");
	cl->started = true;
}

static void client_write(struct client *cl, const char *text, size_t n)
{
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, text, n);
	evhttp_send_reply_chunk(cl->req, b);
	evbuffer_free(b);
}

/* Sends one event (run:seq); a complete event ends the stream. Returns true when the client
 * was closed. */
static bool client_send(struct client *cl, int run, const struct jev *ev)
{
	struct agentd *d = cl->d;
	client_start_stream(cl);
	cl->run = run;
	cl->seq = ev->seq;
	const char *data = cl->dataform ? ev->dataform : ev->named;
	if (data) {
		char id[48];
		snprintf(id, sizeof(id), "%d:%lld", run, (long long)ev->seq);
		buf_reset(&d->out);
		sse_write_event(&d->out, id, cl->dataform ? NULL : ev->name, data, strlen(data));
		client_write(cl, d->out.p, d->out.len);
	}
	if (strcmp(ev->name, "complete") == 0) {
		client_close(cl);
		return true;
	}
	return false;
}

/* The data-only form of an event (API.md 1.9), or NULL when that form has no such event. */
static char *dataform_of(const char *name, struct json_object *data)
{
	struct json_object *o = json_object_new_object();
	if (strcmp(name, "agent_chunk") == 0) {
		json_object_object_add(o, "type", json_object_new_string("chunk"));
		json_object_object_add(o, "content", jstr(jx_get_str(data, "chunk")));
		json_object_object_add(o, "word_count",
				       json_object_new_int64(jx_get_int(data, "word_count", 0)));
	} else if (strcmp(name, "complete") == 0) {
		json_object_object_add(o, "type", json_object_new_string("complete"));
		const char *t = jx_get_str(data, "content");
		json_object_object_add(o, "content", jstr(t ? t : jx_get_str(data, "response")));
		json_object_object_add(o, "word_count",
				       json_object_new_int64(jx_get_int(data, "word_count", 0)));
		json_object_object_add(o, "agent", jstr(jx_get_str(data, "agent")));
		struct json_object *md = jx_get(data, "metadata");
		if (md && jx_has(md, "error"))
			json_object_object_add(o, "error", jstr(jx_get_str(md, "error")));
	} else if (strcmp(name, "error") == 0) {
		json_object_object_add(o, "type", json_object_new_string("error"));
		json_object_object_add(o, "error", jstr(jx_get_str(data, "error")));
	} else if (strcmp(name, "agent_reset") == 0) {
		json_object_object_add(o, "type", json_object_new_string("reset"));
		json_object_object_add(o, "attempt",
				       json_object_new_int64(jx_get_int(data, "attempt", 0)));
	} else {
		json_object_put(o);
		return NULL;
	}
	char *s = json_dup(o);
	json_object_put(o);
	return s;
}

/* Sends an event that is not one of the job's (agent_reset, a synthesised end). */
static bool client_send_adhoc(struct client *cl, int run, int64_t seq, const char *name,
			      struct json_object *data)
{
	char ts[40];
	iso_now(ts);
	json_object_object_add(data, "timestamp", json_object_new_string(ts));
	struct jev ev = {.seq = seq, .name = name, .named = json_dup(data)};
	ev.dataform = dataform_of(name, data);
	json_object_put(data);
	bool closed = client_send(cl, run, &ev);
	free(ev.named);
	free(ev.dataform);
	return closed;
}

static void client_reset(struct client *cl, int run)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "attempt", json_object_new_int(run));
	json_object_object_add(o, "message",
			       json_object_new_string("The job was restarted; its events follow "
						      "from the start of the new attempt"));
	client_send_adhoc(cl, run, 0, "agent_reset", o);
}

static void client_on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct client *cl = arg;
	client_start_stream(cl);
	static const char ping[] = ": ping\n\n";
	client_write(cl, ping, sizeof(ping) - 1);
}

/* Attaches cl to a job running here and catches it up from memory. */
static void client_attach(struct client *cl, struct job *j)
{
	if (cl->poll)
		evtimer_del(cl->poll);
	client_unlink(cl);
	cl->job = j;
	list_add(&j->clients, cl);
	if (cl->kind != CL_STREAM)
		return;
	int64_t from = 0;
	if (cl->run == j->run) {
		from = cl->seq;
	} else if (cl->run > 0) {
		client_reset(cl, j->run);
		from = 0;
	}
	client_start_stream(cl);
	for (size_t i = 0; i < j->nevs; i++)
		if (j->evs[i].seq > from && client_send(cl, j->run, &j->evs[i]))
			return;
}

/* Moves the job's clients to database polling (the job stopped here without an end). */
static void clients_to_remote(struct job *j)
{
	while (j->clients) {
		struct client *cl = j->clients;
		client_unlink(cl);
		list_add(&cl->d->remote, cl);
		struct timeval tv = {0, POLL_MS * 1000};
		evtimer_add(cl->poll, &tv);
	}
}

static void client_on_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_poll_now(arg);
}

/* ------------------------------------------------------------------------------ jobs */

static struct job *job_find(struct agentd *d, const char *id)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

/* Adds an event to the run; sends it to the attached streams when send. Consumes data. */
static void job_add_event(struct job *j, const char *name, struct json_object *data, bool send)
{
	char ts[40];
	iso_now(ts);
	json_object_object_add(data, "timestamp", json_object_new_string(ts));
	if (j->nevs == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 64;
		struct jev *e = realloc(j->evs, cap * sizeof(*e));
		if (!e)
			abort();
		j->evs = e;
		j->cap = cap;
	}
	struct jev *ev = &j->evs[j->nevs++];
	ev->seq = j->next_seq++;
	ev->name = name;
	ev->chunk = strcmp(name, "agent_chunk") == 0 && !j->store_chunks;
	ev->named = json_dup(data);
	ev->dataform = dataform_of(name, data);
	json_object_put(data);
	if (!ev->chunk && !evtimer_pending(j->flush, NULL)) {
		struct timeval tv = {0, FLUSH_MS * 1000};
		evtimer_add(j->flush, &tv);
	}
	if (!send)
		return;
	size_t idx = j->nevs - 1;
	for (struct client *cl = j->clients, *next; cl; cl = next) {
		next = cl->next;
		if (cl->kind == CL_STREAM)
			client_send(cl, j->run, &j->evs[idx]);
	}
}

static void job_emit(struct job *j, const char *name, struct json_object *data)
{
	job_add_event(j, name, data, true);
}

/* Stores the events not stored yet (agent_chunk excepted). RC_OK or the error. */
static int job_flush(struct job *j, struct ctx *c)
{
	if (j->nflushed == j->nevs)
		return RC_OK;
	struct buf b;
	buf_init(&b, NULL);
	buf_putc(&b, '[');
	size_t n = 0;
	for (size_t i = j->nflushed; i < j->nevs; i++) {
		const struct jev *ev = &j->evs[i];
		if (ev->chunk)
			continue;
		buf_printf(&b, "%s{\"seq\":%lld,\"event\":", n ? "," : "", (long long)ev->seq);
		buf_json_str(&b, ev->name);
		buf_puts(&b, ",\"data\":");
		buf_puts(&b, ev->named);
		buf_putc(&b, '}');
		n++;
	}
	buf_putc(&b, ']');
	int rc = RC_OK;
	if (n)
		rc = jobs_add_events(c, j->id, j->d->owner, j->run, b.p);
	buf_free(&b);
	if (rc == RC_OK)
		j->nflushed = j->nevs;
	return rc;
}

static void job_on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct job *j = arg;
	struct op o;
	op_begin(&o, j->d, j->id);
	if (job_flush(j, &o.c) != RC_OK)
		log_msg(LL_WARN, j->id, "events not stored yet: %s", o.c.detail);
	op_end(&o);
}

static void arun_abort(struct arun *ar)
{
	if (ar->call) {
		evcurl_remove(ar->j->d->ec, llm_call_easy(ar->call));
		llm_call_free(ar->call);
		ar->call = NULL;
	}
	if (ar->retry)
		evtimer_del(ar->retry);
}

static void arun_clear(struct arun *ar)
{
	arun_abort(ar);
	if (ar->retry)
		event_free(ar->retry);
	ar->retry = NULL;
	free(ar->text);
	ar->text = NULL;
	free(ar->cached);
	ar->cached = NULL;
}

static void job_abort_calls(struct job *j)
{
	for (int i = 0; i < j->nruns; i++)
		if (j->runs[i].used)
			arun_abort(&j->runs[i]);
	if (j->prim.used)
		arun_abort(&j->prim);
}

/* Frees a job that has no client left. */
static void job_free(struct job *j)
{
	struct agentd *d = j->d;
	if (j->prev)
		j->prev->next = j->next;
	else if (d->jobs == j)
		d->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	d->nrunning--;
	for (int i = 0; i < JOB_MAX_RUNS; i++)
		arun_clear(&j->runs[i]);
	arun_clear(&j->prim);
	for (size_t i = 0; i < j->nevs; i++) {
		free(j->evs[i].named);
		free(j->evs[i].dataform);
	}
	free(j->evs);
	if (j->flush)
		event_free(j->flush);
	json_object_put(j->request);
	json_object_put(j->interactions);
	json_object_put(j->kb_sources);
	buf_free(&j->sent);
	db_done(&j->c);
	arena_free(j->a); /* wipes the key */
	free(j);
}

/* ------------------------------------------------------------------------------ provider calls */

static void arun_on_retry(evutil_socket_t fd, short what, void *arg);
static void arun_finish(struct arun *ar, const struct llm_result *res);
static void job_start_stage(struct job *j, int k);

static int arun_on_token(void *u, const char *tok, size_t n)
{
	struct arun *ar = u;
	struct job *j = ar->j;
	if (j->cancelled || j->ending)
		return 1;
	if (!ar->primary || (j->kind == JK_AGENT && !j->agent_stream))
		return 0;
	bool stop = false;
	if (j->kind == JK_PHASE) {
		int64_t left = j->cap_chars - j->sent_chars;
		size_t take = utf8_prefix(tok, n, left);
		if (take < n) {
			n = take;
			stop = true;
			j->capped = true;
		}
		j->sent_chars += utf8_chars(tok, n);
		bool in_word = j->sent.len && j->sent.p[j->sent.len - 1] != ' ' &&
			       j->sent.p[j->sent.len - 1] != '\n';
		j->words += count_words(tok, n, &in_word);
		buf_append(&j->sent, tok, n);
	}
	if (n) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "agent", json_object_new_string(ar->def->key));
		json_object_object_add(o, "chunk", json_object_new_string_len(tok, (int)n));
		if (j->kind == JK_PHASE)
			json_object_object_add(o, "word_count", json_object_new_int64(j->words));
		job_emit(j, "agent_chunk", o);
	}
	return stop ? 1 : 0;
}

static void arun_on_done(void *u, const struct llm_result *res)
{
	struct arun *ar = u;
	ar->call = NULL; /* freed by the caller (agentd_on_transfer) */
	arun_finish(ar, res);
}

/* ------------------------------------------------------------------------------ response cache
 *
 * API.md 4.3 with 8.2 item 13 fixed: an entry is keyed by the agent, the provider, the model,
 * the user and the product, and a SHA-256 of the exact system prompt and messages (which carry
 * the whole context: history, submissions, knowledge excerpts, the other agents' insights).
 * Two agents given the same message, or two users asking the same thing, never share an
 * answer. Entries are written when the job completes (a run that was killed, cancelled or
 * failed stores nothing), with the TTL agent_cache_ttl_s, and only up to CACHE_MAX_BYTES.
 *
 * Redis is reached through lib/kv on the loop itself: a GET when a call starts and a SETEX
 * per answer when the job ends, each bounded by KV_COMMAND_TIMEOUT_MS. That blocks the loop
 * for at most that long, and lib/kv's backoff skips a down or hung Redis (the cache is then
 * bypassed, and the calls go to the provider) instead of paying the timeout on every call.
 */

static void md_add(EVP_MD_CTX *md, const char *s)
{
	EVP_DigestUpdate(md, s ? s : "", s ? strlen(s) + 1 : 1); /* NUL separates the fields */
}

static const char *cache_key_of(struct arun *ar, const struct llm_request *rq)
{
	struct job *j = ar->j;
	if (!j->d->kv || j->d->cfg->agent_cache_ttl_s <= 0)
		return NULL;
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hn = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	if (ok) {
		char num[24];
		snprintf(num, sizeof(num), "%d", rq->max_tokens);
		md_add(md, "v1");
		md_add(md, ar->def->key);
		md_add(md, llm_provider_name(rq->provider));
		md_add(md, rq->base_url);
		md_add(md, rq->model);
		md_add(md, num);
		md_add(md, j->who.user_id);
		md_add(md, j->product_id);
		md_add(md, rq->system);
		for (size_t i = 0; i < rq->nmsgs; i++) {
			md_add(md, rq->msgs[i].role);
			md_add(md, rq->msgs[i].content);
		}
		ok = EVP_DigestFinal_ex(md, h, &hn) == 1 && hn == 32;
	}
	EVP_MD_CTX_free(md);
	if (!ok)
		return NULL;
	char hex[65];
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	return arena_printf(j->a, "agent_cache:%s:%s", ar->def->key, hex);
}

/* The cached answer of ar's key into ar->cached; false on a miss or with Redis away. */
static bool cache_get(struct arun *ar)
{
	redisReply *x = kv_cmd(ar->j->d->kv, "GET %s", ar->cache_key);
	if (!x)
		return false;
	if (x->type == REDIS_REPLY_STRING && x->len <= CACHE_MAX_BYTES) {
		struct json_object *o = jx_parse(x->str, x->len, 8);
		const char *t = jx_get_str(o, "text");
		if (t)
			ar->cached = strdup(t);
		json_object_put(o);
	}
	freeReplyObject(x);
	return ar->cached != NULL;
}

/* Stores ar's answer when it came from the provider, complete. */
static void cache_put(struct job *j, const struct arun *ar)
{
	if (!ar->used || !ar->ok || ar->cache_hit || !ar->cache_key || !ar->text ||
	    ar->status != LLM_OK || !j->d->kv)
		return;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "agent", json_object_new_string(ar->def->key));
	json_object_object_add(o, "model", jstr(ar->model));
	json_object_object_add(o, "text", json_object_new_string(ar->text));
	size_t n;
	const char *v = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	if (n <= CACHE_MAX_BYTES) {
		char ttl[24];
		snprintf(ttl, sizeof(ttl), "%lld", (long long)j->d->cfg->agent_cache_ttl_s);
		redisReply *x = kv_cmd(j->d->kv, "SETEX %s %s %b", ar->cache_key, ttl, v, n);
		if (x)
			freeReplyObject(x);
	}
	json_object_put(o);
}

/* Starts (or restarts) the agent's call; a failure to build it finishes it from the loop, and
 * so does a cache hit (no provider call). */
static void arun_start(struct arun *ar)
{
	struct job *j = ar->j;
	const struct app_config *cfg = j->d->cfg;
	struct llm_msg one = {"user", ar->prompt};
	struct llm_request rq = {
		.provider = j->choice.provider,
		.base_url = j->choice.base_url,
		.api_key = j->choice.api_key,
		.model = ar->model,
		.system = ar->system,
		.msgs = ar->msgs ? ar->msgs : &one,
		.nmsgs = ar->msgs ? ar->nmsgs : 1,
		.max_tokens = ar->def->max_tokens,
		.temperature = -1,
		.stream = j->kind != JK_AGENT || j->agent_stream,
		.connect_timeout_ms = cfg->agent_connect_timeout_ms,
		.first_token_timeout_ms = cfg->agent_first_token_timeout_ms,
		.idle_timeout_ms = cfg->agent_idle_timeout_ms,
		.total_timeout_ms = cfg->agent_total_timeout_ms,
	};
	if (!ar->start_us) {
		ar->start_us = now_us();
		ar->cache_key = cache_key_of(ar, &rq);
		if (ar->cache_key && cache_get(ar)) {
			ar->cache_hit = true;
			event_active(ar->retry, EV_TIMEOUT, 0);
			return;
		}
	}
	ar->call = llm_call_new(&rq, arun_on_token, arun_on_done, ar);
	if (ar->call && evcurl_add(j->d->ec, llm_call_easy(ar->call)) == 0)
		return;
	llm_call_free(ar->call);
	ar->call = NULL;
	ar->start_failed = true;
	event_active(ar->retry, EV_TIMEOUT, 0);
}

static void arun_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct arun *ar = arg;
	if (ar->cached) {
		/* a cache hit: the answer as one piece of text, as if the provider sent it */
		char *t = ar->cached;
		ar->cached = NULL;
		size_t n = strlen(t);
		/* one chunk holding the whole answer: stored like the other events, so a client
		 * that joins after the end (it came at once) still gets it */
		ar->j->store_chunks = true;
		arun_on_token(ar, t, n);
		ar->j->store_chunks = false;
		struct llm_result r = {.status = LLM_OK,
				       .retry_after_ms = -1,
				       .text = t,
				       .text_len = n,
				       .input_tokens = 0,
				       .output_tokens = 0,
				       .first_token_us = 0};
		arun_finish(ar, &r);
		free(t);
		return;
	}
	if (ar->start_failed) {
		struct llm_result r = {.status = LLM_E_BADREQ,
				       .retry_after_ms = -1,
				       .first_token_us = -1,
				       .input_tokens = -1,
				       .output_tokens = -1};
		snprintf(r.detail, sizeof(r.detail), "the provider call could not be prepared");
		arun_finish(ar, &r);
		return;
	}
	arun_start(ar);
}

static bool follow_transfer(struct agentd *d, CURL *easy, CURLcode cc);

/* The evcurl done callback: one provider call, or one V0 check, ended. */
static void agentd_on_transfer(void *u, CURL *easy, CURLcode cc)
{
	if (follow_transfer(u, easy, cc))
		return;
	struct llm_call *call = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
	if (!call)
		return;
	llm_call_done(call, cc); /* runs arun_on_done */
	llm_call_free(call);
}

static void record_call(struct arun *ar, const struct llm_result *res)
{
	struct job *j = ar->j;
	struct metrics *m = &j->d->m;
	enum llm_provider p = j->choice.provider;
	if (p >= LLM__MAX)
		return;
	m->calls[p][res->status < LLM__SMAX ? res->status : LLM_E_PROTOCOL]++;
	int cls = res->http_status >= 100 && res->http_status < 600 ? res->http_status / 100 : 0;
	m->http_status[p][cls]++;
	hist_add(&m->latency[p], res->total_us);
	if (res->first_token_us >= 0)
		hist_add(&m->first_token[p], res->first_token_us);
	log_msg(LL_INFO, j->id,
		"provider call agent=%s provider=%s model=%s status=%s http_status=%d "
		"first_token_ms=%lld total_ms=%lld input_tokens=%lld output_tokens=%lld retry=%d",
		ar->def->key, llm_provider_name(p), ar->model, llm_status_str(res->status),
		res->http_status,
		(long long)(res->first_token_us >= 0 ? res->first_token_us / 1000 : -1),
		(long long)(res->total_us / 1000), (long long)res->input_tokens,
		(long long)res->output_tokens, ar->retries);
}

/* What the call was for, on agent_start and agent_complete. */
static const char *arun_step(const struct arun *ar)
{
	static const char *const names[] = {"consult", "open", "critique", "answer"};
	return ar->primary ? "answer" : names[ar->role];
}

static struct json_object *arun_metadata(const struct arun *ar)
{
	struct job *j = ar->j;
	struct json_object *md = json_object_new_object();
	json_object_object_add(
		md, "provider",
		j->declined ? NULL : json_object_new_string(llm_provider_name(j->choice.provider)));
	json_object_object_add(md, "model", jstr(ar->model));
	json_object_object_add(md, "processing_time", jnum((double)(ar->total_us / 1000) / 1000.0));
	struct json_object *t = json_object_new_object();
	int64_t in = ar->in_tok > 0 ? ar->in_tok : 0, out = ar->out_tok > 0 ? ar->out_tok : 0;
	json_object_object_add(t, "input", json_object_new_int64(in));
	json_object_object_add(t, "output", json_object_new_int64(out));
	json_object_object_add(t, "total", json_object_new_int64(in + out));
	json_object_object_add(md, "tokens", t);
	json_object_object_add(md, "cache_hit", json_object_new_boolean(ar->cache_hit));
	/* the knowledge articles the agent was given (the rag step): ids and titles */
	json_object_object_add(md, "context_sources",
			       j->kb_sources ? json_object_get(j->kb_sources)
					     : json_object_new_array());
	return md;
}

static void emit_interaction(struct arun *ar)
{
	struct job *j = ar->j;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "from_agent",
			       json_object_new_string(ar->from ? ar->from : "coordinator"));
	json_object_object_add(o, "to_agent", json_object_new_string(ar->def->key));
	json_object_object_add(o, "query", jstr(j->query));
	json_object_object_add(o, "response", jstr(ar->text));
	json_object_object_add(o, "metadata", arun_metadata(ar));
	json_object_array_add(j->interactions, json_object_get(o));
	job_emit(j, "interaction", o);
}

static void emit_agent_complete(struct arun *ar)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "agent", json_object_new_string(ar->def->key));
	json_object_object_add(o, "response", jstr(ar->text));
	json_object_object_add(o, "step", json_object_new_string(arun_step(ar)));
	json_object_object_add(o, "metadata", arun_metadata(ar));
	json_object_object_add(o, "system_prompt", jstr(ar->system));
	json_object_object_add(o, "user_prompt", NULL);
	json_object_object_add(o, "system_context", NULL);
	json_object_object_add(o, "rag_context", ar->j->kb_text ? jstr(ar->j->kb_text) : NULL);
	job_emit(ar->j, "agent_complete", o);
}

/* The message of a failed call (API.md 5.6): never provider text, never the key. */
static const char *error_detail(struct job *j, enum llm_status st)
{
	struct arena *a = j->a;
	const char *prov = provider_title(j->choice.provider);
	switch (status_of(st)) {
	case 401:
		return arena_printf(a,
				    "%s rejected the API key. Please verify the key in "
				    "Settings \u2192 Providers.",
				    prov);
	case 429: {
		static const char *const api[LLM__MAX] = {"openai", "claude", "gemini"};
		struct buf others;
		buf_init(&others, a);
		struct json_object *conf = ai_configured(&j->c, j->d->cfg);
		db_done(&j->c);
		ctx_clear(&j->c);
		for (size_t i = 0; conf && i < json_object_array_length(conf); i++) {
			const char *n = json_object_get_string(json_object_array_get_idx(conf, i));
			if (n && strcmp(n, api[j->choice.provider]) != 0)
				buf_printf(&others, "%s%s", others.len ? ", " : "", n);
		}
		json_object_put(conf);
		if (others.len)
			return arena_printf(a,
					    "%s rate limit or quota exceeded. Try again later, "
					    "or use another configured provider: %s.",
					    prov, others.p);
		return arena_printf(a,
				    "%s rate limit or quota exceeded. Try again later; no other "
				    "provider is configured (Settings \u2192 Providers).",
				    prov);
	}
	case 502: return "Unable to reach the configured LLM provider. Please try again later.";
	default: return "Internal server error";
	}
}

static void arun_finish(struct arun *ar, const struct llm_result *res)
{
	struct job *j = ar->j;
	struct agentd *d = j->d;
	if (!ar->cache_hit && !j->declined)
		record_call(ar, res);
	bool ok = res->status == LLM_OK || (res->status == LLM_E_CANCELLED && j->capped);
	if (j->cancelled || j->ending)
		return;
	if (!ok && llm_retryable(res) && ar->retries < d->cfg->agent_max_retries) {
		int64_t ms = llm_backoff_ms(ar->retries, RETRY_BASE_MS, RETRY_CAP_MS,
					    res->retry_after_ms);
		ar->retries++;
		if (j->choice.provider < LLM__MAX)
			d->m.call_retries[j->choice.provider]++;
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		evtimer_add(ar->retry, &tv);
		return;
	}
	ar->finished = true;
	ar->ok = ok;
	ar->status = res->status;
	ar->total_us = now_us() - ar->start_us;
	ar->in_tok = res->input_tokens;
	ar->out_tok = res->output_tokens;
	free(ar->text);
	ar->text = ok ? strndup(res->text ? res->text : "", res->text_len) : NULL;
	if (!ok) {
		const char *detail = error_detail(j, res->status);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(detail));
		json_object_object_add(o, "agent", json_object_new_string(ar->def->key));
		json_object_object_add(o, "error_type",
				       json_object_new_string(llm_status_str(res->status)));
		json_object_object_add(o, "status", json_object_new_int(status_of(res->status)));
		job_emit(j, "error", o);
		if (ar->primary) {
			job_end(j, false, status_of(res->status), detail,
				llm_status_str(res->status));
			return;
		}
	} else {
		emit_agent_complete(ar);
		emit_interaction(ar);
	}
	if (--j->stage_left > 0)
		return;
	if (j->stage + 1 < j->nstages)
		job_start_stage(j, j->stage + 1);
	else
		job_end(j, true, 200, NULL, NULL);
}

/* ------------------------------------------------------------------------------ running a job */

static void arun_init(struct job *j, struct arun *ar, const struct agent_def *def, bool primary,
		      const char *tier)
{
	ar->j = j;
	ar->def = def;
	ar->primary = primary;
	ar->used = true;
	ar->system = def->system_prompt;
	ar->model = ai_model(j->d->cfg, j->choice.provider, tier ? tier : def->tier);
	ar->retry = evtimer_new(j->d->base, arun_on_retry, ar);
}

static void emit_agent_start(struct arun *ar)
{
	struct job *j = ar->j;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "agent", json_object_new_string(ar->def->key));
	const char *q = j->query ? j->query : "";
	size_t n = utf8_prefix(q, strlen(q), QUERY_PREVIEW_CHARS);
	json_object_object_add(o, "query", json_object_new_string_len(q, (int)n));
	if (j->kind == JK_MULTI)
		json_object_object_add(o, "step", json_object_new_string(arun_step(ar)));
	job_emit(j, "agent_start", o);
}

static void emit_progress(struct job *j, double p, const char *msg)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "progress", jnum(p));
	json_object_object_add(o, "message", json_object_new_string(msg));
	/* the job a client reconnects to (GET /api/streaming/jobs/{job_id}/events) */
	json_object_object_add(o, "job_id", json_object_new_string(j->id));
	job_emit(j, "progress", o);
}

/* ------------------------------------------------------------------------------ the modes
 *
 * A job's calls run in stages (API.md 5.3 step 5): every call of a stage runs at once, and
 * the next stage starts when all of them ended (a failed consultation is reported and the
 * job goes on without it; only the answering agent's failure fails the job). Prompts are
 * written when their stage starts, so they can carry the answers of the earlier stages:
 *
 *   enhanced_collaborative  0: the supporting agents        1: the primary, with their insights
 *   collaborative           i: supporting agent i, with the insights of agents 0..i-1
 *                           n: the primary, with every insight
 *   sequential              i: agent i builds on the answer of agent i-1; the primary is last
 *   parallel                0: every agent and the primary on the same message
 *   debate                  0: two agents answer   1: each critiques the other's answer
 *                           2: the primary synthesizes
 */

/* The answer before ar in a sequential chain: the last successful one of an earlier stage. */
static const struct arun *chain_previous(struct job *j, const struct arun *ar)
{
	const struct arun *prev = NULL;
	for (int i = 0; i < j->nruns; i++) {
		const struct arun *r = &j->runs[i];
		if (r->stage < ar->stage && r->ok && r->text && (!prev || r->stage > prev->stage))
			prev = r;
	}
	return prev;
}

static void put_insights(struct buf *b, struct job *j, int before_stage, const char *title)
{
	int n = 0;
	for (int i = 0; i < j->nruns; i++) {
		const struct arun *s = &j->runs[i];
		if (s->stage >= before_stage || !s->ok || !s->text)
			continue;
		buf_printf(b, "%s### %s\n%s", n++ ? "\n\n" : title, s->def->name, s->text);
	}
}

/* The user message of ar, written when its stage starts (job arena). Sets ar->from. */
static const char *build_prompt(struct job *j, struct arun *ar)
{
	struct buf b;
	buf_init(&b, j->a);
	buf_puts(&b, j->query);
	if (j->context)
		buf_printf(&b, "\n\n%s", j->context);
	const char *lead = j->plan.primary->key;
	ar->from = ar->primary ? "coordinator" : lead;
	if (ar->role == AR_OPEN) {
		ar->from = "coordinator";
		buf_puts(&b, "\n\nYou are one of two agents debating this question. Give your own "
			     "answer and the reasoning and evidence behind it.");
		return b.p;
	}
	if (ar->role == AR_CRITIQUE) {
		ar->from = ar->about->def->key;
		buf_printf(
			&b,
			"\n\nThe %s answered:\n\n%s\n\nCritique that answer once: what is wrong, "
			"missing or unsupported, and what you would change. Be specific.",
			ar->about->def->name, ar->about->text ? ar->about->text : "(no answer)");
		return b.p;
	}
	switch (j->mode) {
	case AM_SEQUENTIAL: {
		const struct arun *prev = chain_previous(j, ar);
		ar->from = prev ? prev->def->key : "coordinator";
		if (prev)
			buf_printf(
				&b,
				"\n\nThe previous agent in the chain (%s) answered:\n\n%s\n\nBuild "
				"on that answer: keep what holds, correct what does not, add what "
				"your role contributes. Your answer replaces it.",
				prev->def->name, prev->text);
		break;
	}
	case AM_COLLABORATIVE:
		put_insights(&b, j, ar->stage,
			     ar->primary ? "\n\nInsights from the other agents:\n\n"
					 : "\n\nInsights so far from the other agents:\n\n");
		break;
	case AM_ENHANCED:
		if (ar->primary)
			put_insights(&b, j, ar->stage, "\n\nInsights from the other agents:\n\n");
		break;
	case AM_DEBATE: {
		ar->from = "coordinator";
		buf_puts(&b, "\n\nThe debate so far:");
		for (int i = 0; i < j->nruns; i++) {
			const struct arun *r = &j->runs[i];
			if (!r->ok || !r->text)
				continue;
			if (r->role == AR_OPEN)
				buf_printf(&b, "\n\n### The %s's answer\n%s", r->def->name,
					   r->text);
			else
				buf_printf(&b, "\n\n### The %s's critique of the %s\n%s",
					   r->def->name, r->about->def->name, r->text);
		}
		buf_puts(&b, "\n\nSynthesize the answer: what the evidence supports, where the two "
			     "agree, and how you settle where they differ.");
		break;
	}
	default: break;
	}
	return b.p;
}

/* Starts stage k: its prompts, its agent_start events, then its calls, all at once. */
static void job_start_stage(struct job *j, int k)
{
	struct arun *go[JOB_MAX_RUNS + 1];
	int n = 0;
	j->stage = k;
	for (int i = 0; i < j->nruns; i++)
		if (j->runs[i].stage == k)
			go[n++] = &j->runs[i];
	if (j->prim.used && j->prim.stage == k) {
		if (j->kind == JK_MULTI && k > 0)
			emit_progress(j, 0.5, "Consulting the primary agent...");
		go[n++] = &j->prim;
	}
	for (int i = 0; i < n; i++) {
		if (j->kind == JK_MULTI)
			go[i]->prompt = build_prompt(j, go[i]);
		emit_agent_start(go[i]);
	}
	j->stage_left = n;
	for (int i = 0; i < n; i++)
		arun_start(go[i]);
}

static struct arun *add_run(struct job *j, const struct agent_def *def, int stage, int role)
{
	if (j->nruns >= JOB_MAX_RUNS)
		return NULL;
	struct arun *ar = &j->runs[j->nruns++];
	arun_init(j, ar, def, false, NULL);
	ar->stage = stage;
	ar->role = role;
	return ar;
}

/* The calls of a multi-agent job in its mode's stages. */
static void job_plan_mode(struct job *j)
{
	const struct agent_plan *p = &j->plan;
	arun_init(j, &j->prim, p->primary, true, NULL);
	switch (j->mode) {
	case AM_ENHANCED:
		for (int i = 0; i < p->nsupporting; i++)
			add_run(j, p->supporting[i], 0, AR_CONSULT);
		j->prim.stage = p->nsupporting > 0 ? 1 : 0;
		break;
	case AM_COLLABORATIVE:
	case AM_SEQUENTIAL:
		for (int i = 0; i < p->nsupporting; i++)
			add_run(j, p->supporting[i], i, AR_CONSULT);
		j->prim.stage = p->nsupporting;
		break;
	case AM_PARALLEL:
		for (int i = 0; i < p->nsupporting; i++)
			add_run(j, p->supporting[i], 0, AR_CONSULT);
		j->prim.stage = 0;
		break;
	case AM_DEBATE: {
		struct arun *a = add_run(j, p->debaters[0], 0, AR_OPEN);
		struct arun *b = add_run(j, p->debaters[1], 0, AR_OPEN);
		add_run(j, p->debaters[0], 1, AR_CRITIQUE)->about = b;
		add_run(j, p->debaters[1], 1, AR_CRITIQUE)->about = a;
		j->prim.stage = 2;
		break;
	}
	default: break;
	}
	j->nstages = j->prim.stage + 1;
}

/* ------------------------------------------------------------------------------ context
 *
 * What the agents know besides the message (API.md 5.3 step 2): the product, the client's
 * context (phase, field, form data), the knowledge excerpts (the rag step: the top articles
 * by full-text rank, within what the owner may view), the phase submissions and the last 50
 * messages of the product's conversation (or of the product-less session). Loaded on every
 * path, since every path is a job. Bounded by agent_context_budget_tokens, counted as
 * characters / 4: the product and the client's context first, then the excerpts by rank, the
 * current phase's submission, the conversation from its newest message back (stopping at
 * the first that does not fit, so what is kept is the recent past without holes), then the
 * other submissions.
 */
#define KB_TOP 5
#define KB_EXCERPT_CHARS 1500
#define HISTORY_ITEM_CHARS 2000
#define SUBMISSION_CHARS 4000
#define CLIENT_CTX_CHARS 4000

struct cpart {
	char *text; /* rendered (job arena) */
	size_t len; /* bytes */
	bool keep;  /* within the budget */
};

/* s cut to max code points with " ..." (job arena). */
static char *excerpt(struct job *j, const char *s, int64_t max)
{
	size_t len = s ? strlen(s) : 0;
	size_t cut = utf8_prefix(s ? s : "", len, max);
	return arena_printf(j->a, "%.*s%s", (int)cut, s ? s : "", cut < len ? " ..." : "");
}

static bool fits(size_t *left, struct cpart *p)
{
	if (!p->text || p->len + 2 > *left)
		return false;
	*left -= p->len + 2;
	p->keep = true;
	return true;
}

/* The parts of a job's context, rendered from the rows and the excerpts; the budget then marks
 * which are kept (cpart.keep). */
struct cparts {
	struct cpart prod;        /* the product */
	struct cpart client;      /* the client's context */
	struct cpart cur_sub;     /* the current phase's submission */
	struct cpart *kb;         /* the excerpts by rank, KB_TOP slots (job arena) */
	struct cpart *hist;       /* the messages, newest first, nrows + 1 slots (job arena) */
	struct cpart *subs;       /* the other submissions, nrows + 1 slots (job arena) */
	int nkb;                  /* excerpts in kb */
	int nhist;                /* messages in hist */
	int nsubs;                /* submissions in subs */
	struct json_object *arts; /* the articles of kb, by rank (kb_retrieve), or NULL */
};

/* Plans the agents of a multi-agent job (agent_plan_for) from its request, the phase the
 * client named and the recent messages of the rows (for phase detection). Returns the phase
 * the context is about: the plan's for a multi-agent job, else phase_name. */
static const char *job_plan_agents(struct job *j, const char *phase_name, PGresult *rows, int nrows)
{
	/* the recent messages, newest first, for phase detection */
	const char *recent[10];
	size_t nrecent = 0;
	for (int i = 0; i < nrows && nrecent < 10; i++)
		if (strcmp(PQgetvalue(rows, i, 0), "history") == 0)
			recent[nrecent++] = PQgetvalue(rows, i, 2);
	if (j->kind != JK_MULTI)
		return phase_name;
	struct json_object *rq = j->request;
	const char *sup[AGENT_MAX_SUPPORTING * 2];
	size_t n = 0;
	struct json_object *sa = jx_get(rq, "supporting_agents");
	for (size_t i = 0; sa && json_object_is_type(sa, json_type_array) &&
			   i < json_object_array_length(sa) && n < AGENT_MAX_SUPPORTING * 2;
	     i++) {
		const char *k = json_object_get_string(json_object_array_get_idx(sa, i));
		if (k)
			sup[n++] = k;
	}
	agent_plan_for(&j->plan, j->query, phase_name, recent, nrecent,
		       jx_get_str(rq, "primary_agent"), sa ? sup : NULL, n);
	return j->plan.phase;
}

/* The rows (jobs_context) as parts: the product, the submissions (the one of phase_name apart)
 * and the conversation, newest first. */
static void cparts_from_rows(struct job *j, struct cparts *cp, PGresult *rows, int nrows,
			     const char *phase_name)
{
	for (int i = 0; i < nrows; i++) {
		const char *kind = PQgetvalue(rows, i, 0);
		const char *title = PQgetvalue(rows, i, 1), *body = PQgetvalue(rows, i, 2);
		const char *extra = PQgetvalue(rows, i, 3), *status = PQgetvalue(rows, i, 4);
		if (strcmp(kind, "product") == 0) {
			cp->prod.text =
				arena_printf(j->a, "## The product\nName: %s\nDescription: %s",
					     title, excerpt(j, body, 1000));
		} else if (strcmp(kind, "submission") == 0) {
			struct cpart *p = &cp->subs[cp->nsubs++];
			p->text = arena_printf(
				j->a, "### %s (%s)\n%s%s%s", title, status,
				excerpt(j, body, SUBMISSION_CHARS), *extra ? "\nGenerated: " : "",
				*extra ? excerpt(j, extra, SUBMISSION_CHARS / 2) : "");
			if (phase_name && strcasecmp(title, phase_name) == 0) {
				cp->cur_sub = *p;
				cp->nsubs--;
			}
		} else {
			const char *who = strcmp(title, "user") == 0 ? "User"
					  : *extra ? arena_printf(j->a, "%s agent", extra)
						   : title;
			cp->hist[cp->nhist++].text = arena_printf(
				j->a, "%s: %s", who, excerpt(j, body, HISTORY_ITEM_CHARS));
		}
	}
}

/* The client's context part: its phase, field, response length and form data, or (a
 * multi-agent job whose client gave none) the phase the plan is about. */
static void cparts_client(struct job *j, struct cparts *cp, struct json_object *ctxo,
			  const char *phase_name)
{
	if (ctxo) {
		struct buf b;
		buf_init(&b, j->a);
		static const char *const keys[] = {"phase_name", "current_field", "response_length",
						   NULL};
		for (const char *const *k = keys; *k; k++) {
			const char *v = jx_get_str(ctxo, *k);
			if (v && *v)
				buf_printf(&b, "%s: %s\n", *k, v);
		}
		struct json_object *fd = jx_get(ctxo, "form_data");
		if (fd)
			buf_printf(
				&b, "form_data: %s\n",
				excerpt(j,
					json_object_to_json_string_ext(fd, JSON_C_TO_STRING_PLAIN),
					CLIENT_CTX_CHARS));
		if (b.len)
			cp->client.text = arena_printf(j->a, "## The client's context\n%.*s",
						       (int)b.len - 1, b.p);
	}
	if (phase_name && !cp->client.text && j->kind == JK_MULTI)
		cp->client.text =
			arena_printf(j->a, "## The client's context\nphase_name: %s%s", phase_name,
				     j->plan.phase_detected ? " (detected)" : "");
}

/* The knowledge excerpts (the rag step): the top KB_TOP articles of the product for the
 * query. A failed retrieval is logged and leaves none. */
static void cparts_knowledge(struct job *j, struct cparts *cp)
{
	if (j->product_id[0] && j->query) {
		cp->arts = kb_retrieve(&j->c, j->product_id, j->query, KB_TOP);
		if (!cp->arts) {
			log_msg(LL_WARN, j->id, "knowledge retrieval failed: %s", j->c.detail);
			ctx_clear(&j->c);
		}
	}
	for (size_t i = 0; cp->arts && i < json_object_array_length(cp->arts) && cp->nkb < KB_TOP;
	     i++) {
		struct json_object *a = json_object_array_get_idx(cp->arts, i);
		const char *title = jx_get_str(a, "title");
		cp->kb[cp->nkb++].text =
			arena_printf(j->a, "[%s]\n%s", title ? title : "untitled",
				     excerpt(j, jx_get_str(a, "content"), KB_EXCERPT_CHARS));
	}
}

/* Marks the parts kept within agent_context_budget_tokens, in the order of the section
 * comment: the product and the client's context, the excerpts, the current submission, the
 * conversation from its newest message back (up to the first that does not fit), the other
 * submissions. */
static void cparts_fit(struct job *j, struct cparts *cp)
{
	size_t left = (size_t)j->d->cfg->agent_context_budget_tokens * 4;
	for (struct cpart *p = &cp->prod; p; p = p == &cp->prod ? &cp->client : NULL)
		if (p->text)
			p->len = strlen(p->text);
	fits(&left, &cp->prod);
	fits(&left, &cp->client);
	for (int i = 0; i < cp->nkb; i++) {
		cp->kb[i].len = strlen(cp->kb[i].text);
		fits(&left, &cp->kb[i]);
	}
	if (cp->cur_sub.text) {
		cp->cur_sub.len = strlen(cp->cur_sub.text);
		fits(&left, &cp->cur_sub);
	}
	for (int i = 0; i < cp->nhist; i++) {
		cp->hist[i].len = strlen(cp->hist[i].text);
		if (!fits(&left, &cp->hist[i]))
			break;
	}
	for (int i = 0; i < cp->nsubs; i++) {
		cp->subs[i].len = strlen(cp->subs[i].text);
		fits(&left, &cp->subs[i]);
	}
}

/* The kept excerpts: their section appended to b, their text as j->kb_text and their sources
 * (id, title, rank) as j->kb_sources (owned by the job). */
static void cparts_write_kb(struct job *j, struct cparts *cp, struct buf *b)
{
	struct buf kbt;
	buf_init(&kbt, j->a);
	j->kb_sources = json_object_new_array();
	for (int i = 0; i < cp->nkb; i++) {
		if (!cp->kb[i].keep)
			continue;
		buf_printf(&kbt, "\n%s\n", cp->kb[i].text);
		struct json_object *a = json_object_array_get_idx(cp->arts, (size_t)i);
		struct json_object *src = json_object_new_object();
		json_object_object_add(src, "id", jstr(jx_get_str(a, "id")));
		json_object_object_add(src, "title", jstr(jx_get_str(a, "title")));
		struct json_object *rank = jx_get(a, "rank");
		json_object_object_add(src, "rank", rank ? json_object_get(rank) : NULL);
		json_object_array_add(j->kb_sources, src);
	}
	if (kbt.len) {
		j->kb_text = kbt.p;
		buf_printf(
			b,
			"\n\n## Knowledge-base excerpts of this product (cite them by their title "
			"in brackets when you use them)\n%s",
			kbt.p);
	}
}

/* Writes the kept parts as j->context, in reading order: the product, the client's context,
 * the submissions (the current one last), the excerpts, the conversation oldest first. */
static void cparts_write(struct job *j, struct cparts *cp)
{
	struct buf b;
	buf_init(&b, j->a);
	if (cp->prod.keep)
		buf_printf(&b, "\n\n%s", cp->prod.text);
	if (cp->client.keep)
		buf_printf(&b, "\n\n%s", cp->client.text);
	bool any_sub = cp->cur_sub.keep;
	for (int i = 0; i < cp->nsubs; i++)
		any_sub |= cp->subs[i].keep;
	if (any_sub) {
		buf_puts(&b, "\n\n## Phase submissions");
		for (int i = 0; i < cp->nsubs; i++)
			if (cp->subs[i].keep)
				buf_printf(&b, "\n%s", cp->subs[i].text);
		if (cp->cur_sub.keep)
			buf_printf(&b, "\n%s", cp->cur_sub.text);
	}
	cparts_write_kb(j, cp, &b);
	int last = -1;
	for (int i = 0; i < cp->nhist && cp->hist[i].keep; i++)
		last = i;
	if (last >= 0) {
		buf_puts(&b, "\n\n## The conversation so far (oldest first)");
		for (int i = last; i >= 0; i--)
			buf_printf(&b, "\n%s", cp->hist[i].text);
	}
	if (b.len)
		j->context = arena_printf(j->a, "Context:%s", b.p);
}

/* Loads the rows (jobs_context) and the excerpts, plans the agents (kind multi_agent) and
 * writes j->context. Errors are logged and the job goes on with less context. */
static void job_load_context(struct job *j, const char *phase_name, struct json_object *ctxo)
{
	const char *sid = ctxo ? jx_get_str(ctxo, "session_id") : NULL;
	PGresult *rows = jobs_context(&j->c, j->who.tenant_id, j->who.user_id,
				      j->product_id[0] ? j->product_id : NULL,
				      sid && jx_is_uuid(sid) ? sid : NULL);
	if (!rows) {
		log_msg(LL_WARN, j->id, "context not loaded: %s", j->c.detail);
		ctx_clear(&j->c);
	}
	int nrows = rows ? PQntuples(rows) : 0;
	phase_name = job_plan_agents(j, phase_name, rows, nrows);

	struct cparts cp = {0};
	cp.kb = arena_calloc(j->a, KB_TOP * sizeof(*cp.kb));
	cp.hist = arena_calloc(j->a, (size_t)(nrows + 1) * sizeof(*cp.hist));
	cp.subs = arena_calloc(j->a, (size_t)(nrows + 1) * sizeof(*cp.subs));
	cparts_from_rows(j, &cp, rows, nrows, phase_name);
	cparts_client(j, &cp, ctxo, phase_name);
	cparts_knowledge(j, &cp);
	cparts_fit(j, &cp);
	cparts_write(j, &cp);
}

/* A declined message (API.md 5.3 step 1, 8.2 item 10): the guidance as the coordinator's
 * answer, streamed and saved like any answer, without a provider. */
static void job_decline(struct job *j)
{
	struct json_object *ctxo = jx_get(j->request, "context");
	j->declined = true;
	j->plan.primary = &agent_coordinator;
	arun_init(j, &j->prim, &agent_coordinator, true, NULL);
	j->prim.model = NULL;
	j->nstages = 1;
	emit_progress(j, 0.1, "Starting multi-agent processing...");
	emit_agent_start(&j->prim);
	j->stage_left = 1;
	j->prim.cached = strdup(agent_guidance(ctxo ? jx_get_str(ctxo, "phase_name") : NULL));
	j->prim.start_us = now_us();
	event_active(j->prim.retry, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------------------------------ features
 *
 * summarize, score and generate-prd (API.md 1.10): one agent (summary, scoring,
 * prd_authoring) on the product's material; job_end stores the answer in its table and the
 * row's JSON is the job's result, in the same transaction.
 */
#define SCORE_STANDARDS "BCS, ICAgile, AIPMM and Pragmatic Institute"

static bool feature_prepare(struct job *j)
{
	struct json_object *rq = j->request;
	struct buf b;
	buf_init(&b, j->a);
	if (j->kind == JK_SUMMARIZE) {
		j->plan.primary = agent_find("summary");
		struct json_object *ids = jx_get(rq, "session_ids");
		PGresult *t = jobs_transcript(&j->c, j->who.tenant_id, j->who.user_id,
					      j->product_id, ids ? jx_str(ids, NULL) : "[]");
		if (!t) {
			job_end(j, false, 503, "The conversation could not be read; try again",
				"unavailable");
			return false;
		}
		/* the newest messages within the budget, written oldest first */
		size_t left = (size_t)j->d->cfg->agent_context_budget_tokens * 4;
		int n = PQntuples(t), first = n;
		for (int i = n - 1; i >= 0; i--) {
			size_t len = strlen(PQgetvalue(t, i, 2)) + strlen(PQgetvalue(t, i, 1)) + 16;
			if (len > left)
				break;
			left -= len;
			first = i;
		}
		buf_printf(&b,
			   "Summarise these conversation sessions of the product (%d messages"
			   "%s):\n",
			   n - first, first > 0 ? ", the oldest left out" : "");
		for (int i = first; i < n; i++) {
			const char *who = strcmp(PQgetvalue(t, i, 0), "user") == 0 ? "User"
					  : *PQgetvalue(t, i, 1) ? PQgetvalue(t, i, 1)
								 : PQgetvalue(t, i, 0);
			buf_printf(&b, "\n%s: %s", who, PQgetvalue(t, i, 2));
		}
		j->query = b.p;
	} else {
		bool score = j->kind == JK_SCORE;
		j->plan.primary = agent_find(score ? "scoring" : "prd_authoring");
		PGresult *in = jobs_feature_inputs(&j->c, j->who.tenant_id, j->product_id,
						   jx_get_str(rq, "summary_id"),
						   jx_get_str(rq, "score_id"));
		if (!in || PQntuples(in) != 1) {
			job_end(j, false, 503, "The product could not be read; try again",
				"unavailable");
			return false;
		}
		/* clang-format off */
		buf_puts(&b, score ? "Score this product idea against the five weighted dimensions "
				     "and answer with the JSON object only."
				   : "Write the standardized PRD of this product, following the "
				     SCORE_STANDARDS " templates, in Markdown.");
		/* clang-format on */
		if (!PQgetisnull(in, 0, 0))
			buf_printf(&b, "\n\nSummary of the product's sessions:\n%s",
				   PQgetvalue(in, 0, 0));
		if (!PQgetisnull(in, 0, 1))
			buf_printf(&b, "\n\nThe product's score (overall %s): %s",
				   PQgetvalue(in, 0, 2), PQgetvalue(in, 0, 1));
		j->query = b.p;
	}
	if (!j->plan.primary) {
		job_end(j, false, 500, "Internal server error", "internal");
		return false;
	}
	arun_init(j, &j->prim, j->plan.primary, true, NULL);
	if (j->kind != JK_SUMMARIZE)
		job_load_context(j, NULL, NULL);
	j->prim.prompt =
		j->context ? arena_printf(j->a, "%s\n\n%s", j->query, j->context) : j->query;
	return true;
}

static double clamp100(double v)
{
	return v < 0 ? 0 : v > 100 ? 100 : v;
}

/* The scoring agent's answer as the object jobs_store_feature stores (new reference), or
 * NULL when it is not the JSON its prompt asks for: {overall_score 0-100, dimensions {...},
 * success_probability 0-1 or 0-100 (stored 0-100), success_factors, risk_factors,
 * recommendations}. Text around the object (a code fence) is tolerated. */
static struct json_object *score_parse(const char *text)
{
	const char *a = text ? strchr(text, '{') : NULL, *z = text ? strrchr(text, '}') : NULL;
	if (!a || !z || z < a)
		return NULL;
	struct json_object *in = jx_parse(a, (size_t)(z - a + 1), 16);
	struct json_object *dims = jx_get(in, "dimensions");
	struct json_object *ov = jx_get(in, "overall_score");
	if (!in || !json_object_is_type(in, json_type_object) || !ov ||
	    !(json_object_is_type(ov, json_type_int) ||
	      json_object_is_type(ov, json_type_double)) ||
	    !dims || !json_object_is_type(dims, json_type_object)) {
		json_object_put(in);
		return NULL;
	}
	struct json_object *out = json_object_new_object();
	json_object_object_add(out, "overall_score", jnum(clamp100(json_object_get_double(ov))));
	struct json_object *sp = jx_get(in, "success_probability");
	double p = sp ? json_object_get_double(sp) : 0;
	json_object_object_add(out, "success_probability", jnum(clamp100(p <= 1 ? p * 100 : p)));
	json_object_object_add(out, "dimensions", json_object_get(dims));
	static const char *const lists[] = {"recommendations", "success_factors", "risk_factors"};
	for (size_t i = 0; i < 3; i++) {
		struct json_object *l = jx_get(in, lists[i]);
		json_object_object_add(out, lists[i],
				       l && json_object_is_type(l, json_type_array)
					       ? json_object_get(l)
					       : json_object_new_array());
	}
	json_object_put(in);
	return out;
}

/* ------------------------------------------------------------------------------ export
 *
 * review-prd and export-prd (API.md 1.11): the export agent, on the material the API put in
 * the request (h_reports.c): the deterministic report in Markdown (product, phases' fields
 * and generated content, prototypes, open items, the newest transcript within the context
 * budget) and, for a review, the deterministic review. job_end turns the answer into the
 * route's answer (review_result, export_file), stored as the job's result.
 */
#define REVIEW_MAX_ITEMS 20    /* recommendations or warnings taken from the agent */
#define REVIEW_ITEM_CHARS 1000 /* bytes of one of them */

static bool export_prepare(struct job *j)
{
	struct json_object *rq = j->request;
	const struct agent_def *def = agent_find("export");
	const char *report = jx_get_str(rq, "report");
	if (!def || !report) {
		job_end(j, false, 500, "Internal server error", "internal");
		return false;
	}
	j->plan.primary = def;
	arun_init(j, &j->prim, def, true, NULL);
	if (j->kind == JK_REVIEW) {
		struct json_object *det = jx_get(rq, "deterministic");
		j->query = "Review the PRD material of this product for completeness and quality.";
		j->prim.system = arena_printf(
			j->a,
			"%s\nNow review the PRD material for completeness and quality. Answer with "
			"strict JSON only, no prose and no code fence around it: {\"is_complete\": "
			"true or false, \"missing_sections\": [\"Phase: Field\", ...], "
			"\"recommendations\": [\"...\"], \"warnings\": [\"...\"]}. The deterministic "
			"check you are given is the truth for is_complete and missing_sections; your "
			"recommendations are concrete next steps (at most 10), your warnings the "
			"quality problems you find in the material (at most 10).",
			def->system_prompt);
		j->prim.prompt = arena_printf(
			j->a,
			"%s\n\nThe deterministic completeness check (JSON):\n%s\n\n"
			"The product's material:\n\n%s",
			j->query,
			det ? json_object_to_json_string_ext(det, JSON_C_TO_STRING_PLAIN) : "{}",
			report);
		return true;
	}
	const char *title = jx_get_str(rq, "title");
	bool meta = jx_get_bool(rq, "include_metadata", true);
	bool open_items = !jx_get_bool(rq, "override_missing", false);
	j->query = "Write the Product Requirements Document of this product for export.";
	j->prim.system = arena_printf(
		j->a,
		"%s\nNow write the PRD document itself: Markdown only (headings, lists, paragraphs, "
		"bold, inline code, code blocks), no HTML, no preamble and no closing remarks.",
		def->system_prompt);
	j->prim.prompt = arena_printf(
		j->a,
		"%s Use only the material below; mark every gap as TODO. Begin with the heading "
		"\"# %s\".%s%s\n\nThe product's material (its deterministic report):\n\n%s",
		j->query, title ? title : "Product Requirements Document",
		meta ? " Follow it with a short list of the product's status, owner, completion and "
		       "date."
		     : " Leave out any status, owner or date block.",
		open_items ? " End with an Open Items section naming every missing section."
			   : " Do not list open items.",
		report);
	return true;
}

/* A list of 0..REVIEW_MAX_ITEMS non-blank strings of the agent (each cut to
 * REVIEW_ITEM_CHARS at a UTF-8 boundary) added to out, skipping those already in it; false
 * when v is not an array of strings. */
static bool review_list(struct json_object *out, struct json_object *v)
{
	if (!v || !json_object_is_type(v, json_type_array))
		return false;
	size_t n = json_object_array_length(v);
	for (size_t i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
			return false;
	for (size_t i = 0, added = 0; i < n && added < REVIEW_MAX_ITEMS; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(v, i));
		size_t len = strlen(s);
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\n'))
			len--;
		len = jx_utf8_cut(s, len, REVIEW_ITEM_CHARS);
		if (!len)
			continue;
		bool dup = false;
		for (size_t k = 0; k < json_object_array_length(out) && !dup; k++) {
			const char *o = json_object_get_string(json_object_array_get_idx(out, k));
			dup = strlen(o) == len && memcmp(o, s, len) == 0;
		}
		if (!dup) {
			json_object_array_add(out, json_object_new_string_len(s, (int)len));
			added++;
		}
	}
	return true;
}

/* The review of API.md 1.11 from the agent's answer (malloc JSON): is_complete and
 * missing_sections are the deterministic check's, always; recommendations are the agent's,
 * warnings the deterministic ones followed by the agent's, "source": "agent". An answer that
 * is not that JSON (text around the object is tolerated), or gives no recommendation, leaves
 * the deterministic review as it is, with "source": "template". */
static char *review_result(struct job *j, const char *answer)
{
	struct json_object *det = jx_get(j->request, "deterministic");
	struct json_object *out = json_object_new_object();
	static const char *const keys[] = {"is_complete", "missing_sections", "recommendations",
					   "warnings"};
	for (size_t i = 0; i < 4; i++) {
		struct json_object *v = jx_get(det, keys[i]);
		json_object_object_add(out, keys[i],
				       v        ? json_object_get(v)
				       : i == 0 ? json_object_new_boolean(false)
						: json_object_new_array());
	}
	const char *a = answer ? strchr(answer, '{') : NULL;
	const char *z = answer ? strrchr(answer, '}') : NULL;
	struct json_object *in = a && z && z > a ? jx_parse(a, (size_t)(z - a + 1), 16) : NULL;
	struct json_object *recs = json_object_new_array();
	struct json_object *warns = json_object_new_array();
	review_list(warns, jx_get(det, "warnings"));
	bool ok = in && json_object_is_type(in, json_type_object) &&
		  review_list(recs, jx_get(in, "recommendations")) &&
		  json_object_array_length(recs) > 0 &&
		  (!jx_get(in, "warnings") || review_list(warns, jx_get(in, "warnings")));
	if (ok) {
		json_object_object_add(out, "recommendations", recs);
		json_object_object_add(out, "warnings", warns);
	} else {
		log_msg(LL_WARN, j->id,
			"review: the export agent's answer is not the review JSON; "
			"the deterministic review is returned");
		json_object_put(recs);
		json_object_put(warns);
	}
	json_object_object_add(out, "source", json_object_new_string(ok ? "agent" : "template"));
	json_object_put(in);
	char *s = json_dup(out);
	json_object_put(out);
	return s;
}

/* The document of export-prd from the agent's Markdown (malloc JSON {filename, content_type,
 * document, source}): as written for format markdown; for html, rendered by lib/md (every
 * byte of the model's text escaped, only our own tags) inside the template's page. */
static char *export_file(struct job *j, const char *answer)
{
	struct json_object *rq = j->request;
	const char *format = jx_get_str(rq, "format");
	bool html = !format || strcmp(format, "markdown") != 0;
	struct buf doc;
	buf_init(&doc, j->a);
	if (html) {
		prd_html_begin(&doc, jx_get_str(rq, "title"));
		md_html(&doc, answer);
		prd_html_end(&doc);
	} else {
		buf_puts(&doc, answer ? answer : "");
		if (!doc.len || doc.p[doc.len - 1] != '\n')
			buf_putc(&doc, '\n');
	}
	char fname[168];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "filename",
			       json_object_new_string(safe_filename(jx_get_str(rq, "filename"),
								    fname, sizeof(fname))));
	json_object_object_add(o, "content_type",
			       json_object_new_string(html ? "text/html; charset=utf-8"
							   : "text/markdown; charset=utf-8"));
	json_object_object_add(o, "document", json_object_new_string_len(doc.p, (int)doc.len));
	json_object_object_add(o, "source", json_object_new_string("agent"));
	char *s = json_dup(o);
	json_object_put(o);
	return s;
}

/* Sets up the agents of the job from its request; false after job_end (a refused request). */
static bool job_prepare(struct job *j)
{
	struct json_object *rq = j->request;
	struct json_object *ctxo = jx_get(rq, "context");
	if (ctxo && !json_object_is_type(ctxo, json_type_object))
		ctxo = NULL;
	if (j->kind == JK_MULTI) {
		j->mode = agent_mode_parse(jx_get_str(rq, "coordination_mode"));
		if (!j->query) {
			job_end(j, false, 400, "query is required", "badreq");
			return false;
		}
		job_load_context(j, ctxo ? jx_get_str(ctxo, "phase_name") : NULL, ctxo);
		if (!j->plan.primary) {
			job_end(j, false, 400, "Unknown agent type", "badreq");
			return false;
		}
		job_plan_mode(j);
		return true;
	}
	j->nstages = 1;
	if (is_feature(j->kind))
		return feature_prepare(j);
	if (is_export(j->kind))
		return export_prepare(j);
	if (j->kind == JK_PHASE) {
		const char *phase = jx_get_str(rq, "phase_name");
		const char *len = jx_get_str(rq, "response_length");
		bool verbose = len && strcmp(len, "verbose") == 0;
		bool big = phase && (strcasestr(phase, "requirement") || strcasestr(phase, "prd") ||
				     strcasestr(phase, "development"));
		j->cap_chars = big ? (verbose ? 50000 : 10000) : (verbose ? 8000 : 2000);
		j->plan.primary = agent_for_phase_help(phase);
		if (!j->plan.primary) {
			job_end(j, false, 400, "Unknown agent type", "badreq");
			return false;
		}
		const char *field = jx_get_str(rq, "current_field");
		const char *prompt = jx_get_str(rq, "current_prompt");
		const char *input = jx_get_str(rq, "user_input");
		const char *summary = jx_get_str(rq, "conversation_summary");
		j->query = arena_printf(j->a, "%s%s%s%s%s%s%s",
					prompt ? prompt : "Help me fill in this field.",
					input && *input ? "\n\nWhat I have so far: " : "",
					input && *input ? input : "",
					summary && *summary ? "\n\nConversation so far: " : "",
					summary && *summary ? summary : "",
					field ? "\n\nField: " : "", field ? field : "");
		arun_init(j, &j->prim, j->plan.primary, true, verbose ? NULL : "fast");
		/* the prior phase submissions and the chat (API.md 1.9), bounded like any context
		 */
		job_load_context(j, phase, NULL);
		j->prim.prompt = j->context ? arena_printf(j->a, "%s\n\n%s", j->query, j->context)
					    : j->query;
		j->prim.system = arena_printf(
			j->a,
			"%s\nYou help the user fill in the form of the %s phase. Answer in "
			"plain text, at most %d words.",
			j->plan.primary->system_prompt, phase ? phase : "current",
			verbose ? 1500 : 500);
		return true;
	}
	/* JK_AGENT: one agent, the conversation as sent */
	j->agent_stream = jx_get_bool(rq, "stream", false);
	j->plan.primary = agent_find(jx_get_str(rq, "agent_type"));
	if (!j->plan.primary) {
		job_end(j, false, 400, "Unknown agent type", "badreq");
		return false;
	}
	arun_init(j, &j->prim, j->plan.primary, true, NULL);
	struct json_object *msgs = jx_get(rq, "messages");
	size_t nm = msgs && json_object_is_type(msgs, json_type_array)
			    ? json_object_array_length(msgs)
			    : 0;
	struct llm_msg *m = arena_calloc(j->a, (nm + 1) * sizeof(*m));
	size_t k = 0;
	struct buf sys;
	buf_init(&sys, j->a);
	buf_puts(&sys, j->plan.primary->system_prompt);
	for (size_t i = 0; i < nm; i++) {
		struct json_object *e = json_object_array_get_idx(msgs, i);
		const char *role = jx_get_str(e, "role"), *content = jx_get_str(e, "content");
		if (!role || !content)
			continue;
		if (strcmp(role, "system") == 0) {
			buf_printf(&sys, "\n%s", content);
		} else {
			m[k].role = strcmp(role, "assistant") == 0 ? "assistant" : "user";
			m[k].content = arena_strdup(j->a, content);
			j->query = m[k].content;
			k++;
		}
	}
	if (k == 0) {
		job_end(j, false, 400, "messages must hold at least one user message", "badreq");
		return false;
	}
	j->prim.msgs = m;
	j->prim.nmsgs = k;
	j->prim.system = sys.p;
	return true;
}

/* Runs a claimed job: clients waiting for it attach, provider and key are chosen for its
 * owner, the supporting agents start together (or the single agent). */
static void job_run(struct job *j)
{
	struct agentd *d = j->d;
	for (struct client *cl = d->remote, *next; cl; cl = next) {
		next = cl->next;
		if (strcmp(cl->job_id, j->id) == 0)
			client_attach(cl, j);
	}
	log_msg(LL_INFO, j->id, "job start kind=%s run=%d attempts=%d user=%s",
		job_kind_names[j->kind], j->run, j->attempts, j->who.user_id);
	if (j->kind == JK_MULTI) {
		const char *q = jx_get_str(j->request, "query");
		j->query = q && *q ? arena_strdup(j->a, q) : NULL;
		if (j->query && agent_nlu_gate(j->query) == NLU_DECLINE) {
			job_decline(j);
			return;
		}
	}
	if (ai_choose(&j->c, d->cfg, LLM__MAX, &j->choice) != RC_OK) {
		db_done(&j->c);
		int st = j->c.rc == RC_BADREQ ? 400 : 503;
		const char *detail = arena_strdup(j->a, j->c.detail);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(detail));
		json_object_object_add(o, "agent", NULL);
		json_object_object_add(o, "status", json_object_new_int(st));
		job_emit(j, "error", o);
		job_end(j, false, st, detail, st == 400 ? "no_provider" : "unavailable");
		return;
	}
	if (!job_prepare(j)) {
		db_done(&j->c);
		return;
	}
	db_done(&j->c);
	emit_progress(j, 0.1, "Starting multi-agent processing...");
	job_start_stage(j, 0);
}

/* A job from the row of a claim (copied). */
static struct job *job_new(struct agentd *d, PGresult *res)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->d = d;
	snprintf(j->id, sizeof(j->id), "%s", db_get(res, 0, "id"));
	snprintf(j->who.user_id, sizeof(j->who.user_id), "%s", db_get(res, 0, "user_id"));
	snprintf(j->who.tenant_id, sizeof(j->who.tenant_id), "%s", db_get(res, 0, "tenant_id"));
	const char *pid = db_get(res, 0, "product_id");
	snprintf(j->product_id, sizeof(j->product_id), "%s", pid ? pid : "");
	const char *kind = db_get(res, 0, "kind");
	j->kind = JK_MULTI;
	for (int k = 0; k < JK__MAX; k++)
		if (kind && strcmp(kind, job_kind_names[k]) == 0)
			j->kind = k;
	const char *rq = db_get(res, 0, "request");
	j->request = rq ? jx_parse(rq, strlen(rq), 64) : NULL;
	if (!j->request)
		j->request = json_object_new_object();
	j->attempts = (int)strtol(db_get(res, 0, "attempts"), NULL, 10);
	int max_run = (int)strtol(db_get(res, 0, "max_run"), NULL, 10);
	j->run = j->attempts > max_run ? j->attempts : max_run + 1;
	j->next_seq = strtoll(db_get(res, 0, "max_seq"), NULL, 10) + 1;
	j->a = arena_new(16384);
	ctx_init(&j->c, j->a, d->pool, j->id);
	j->c.who = &j->who;
	j->interactions = json_object_new_array();
	j->flush = evtimer_new(d->base, job_on_flush, j);
	buf_init(&j->sent, NULL);
	j->start_us = now_us();
	j->next = d->jobs;
	if (d->jobs)
		d->jobs->prev = j;
	d->jobs = j;
	d->nrunning++;
	d->m.jobs_claimed++;
	if (j->run > 1)
		d->m.jobs_retried++;
	return j;
}

/* The text of a capped phase answer: cut at a paragraph or sentence end in its last 20 %, or a
 * word end in its last 10 %, then the suffix (API.md 1.9). */
static char *truncate_answer(const char *t, size_t n)
{
	size_t cut = n;
	for (size_t i = n; i > n - n / 5 && i > 1; i--)
		if (t[i - 1] == '\n' && t[i - 2] == '\n') {
			cut = i - 2;
			goto done;
		}
	for (size_t i = n; i > n - n / 5 && i > 1; i--)
		if ((t[i - 2] == '.' || t[i - 2] == '!' || t[i - 2] == '?') && t[i - 1] == ' ') {
			cut = i - 1;
			goto done;
		}
	for (size_t i = n; i > n - n / 10 && i > 0; i--)
		if (t[i - 1] == ' ') {
			cut = i - 1;
			goto done;
		}
done:;
	size_t sl = strlen(TRUNCATED_SUFFIX);
	char *s = malloc(cut + sl + 1);
	if (!s)
		abort();
	memcpy(s, t, cut);
	memcpy(s + cut, TRUNCATED_SUFFIX, sl + 1);
	return s;
}

/* The agents consulted (every call but the answer's), each once, as a new JSON array. */
static struct json_object *consulted_agents(struct job *j)
{
	struct json_object *a = json_object_new_array();
	for (int i = 0; i < j->nruns; i++) {
		const char *k = j->runs[i].def->key;
		bool seen = strcmp(k, j->prim.def->key) == 0;
		for (int x = 0; x < i && !seen; x++)
			seen = strcmp(j->runs[x].def->key, k) == 0;
		if (!seen)
			json_object_array_add(a, json_object_new_string(k));
	}
	return a;
}

/* The result JSON of a finished job (API.md 1.7, 5.5). Returns a new object. */
static struct json_object *job_result(struct job *j, const char *answer)
{
	struct json_object *rq = j->request;
	char ts[40];
	iso_now(ts);
	struct json_object *r = json_object_new_object();
	struct json_object *md = arun_metadata(&j->prim);
	if (j->kind == JK_AGENT) {
		json_object_object_add(r, "agent_type", json_object_new_string(j->prim.def->key));
		json_object_object_add(r, "response", jstr(answer));
		json_object_object_add(md, "has_context",
				       json_object_new_boolean(jx_get(rq, "context") != NULL));
		json_object_object_add(md, "message_count",
				       json_object_new_int((int)j->prim.nmsgs));
		json_object_object_add(md, "product_id",
				       j->product_id[0] ? jstr(j->product_id) : NULL);
		json_object_object_add(r, "metadata", md);
		json_object_object_add(r, "timestamp", json_object_new_string(ts));
		return r;
	}
	if (j->kind == JK_PHASE) {
		json_object_object_add(r, "content", jstr(answer));
		json_object_object_add(r, "word_count", json_object_new_int64(j->words));
		json_object_object_add(r, "agent", json_object_new_string(j->prim.def->key));
		json_object_object_add(r, "truncated", json_object_new_boolean(j->capped));
		json_object_object_add(r, "metadata", md);
		json_object_object_add(r, "timestamp", json_object_new_string(ts));
		return r;
	}
	const char *mode = agent_mode_names[j->mode];
	struct json_object *sup = consulted_agents(j);
	json_object_object_add(md, "mode", json_object_new_string(mode));
	json_object_object_add(md, "phase", jstr(j->plan.phase));
	json_object_object_add(md, "phase_detected",
			       json_object_new_boolean(j->plan.phase_detected));
	json_object_object_add(md, "has_context", json_object_new_boolean(j->context != NULL));
	json_object_object_add(md, "primary_agent", json_object_new_string(j->prim.def->key));
	json_object_object_add(md, "supporting_agents", sup);
	json_object_object_add(md, "user_id", json_object_new_string(j->who.user_id));
	json_object_object_add(md, "product_id", j->product_id[0] ? jstr(j->product_id) : NULL);
	json_object_object_add(r, "primary_agent", json_object_new_string(j->prim.def->key));
	json_object_object_add(r, "response", jstr(answer));
	json_object_object_add(r, "agent_interactions", json_object_get(j->interactions));
	json_object_object_add(r, "coordination_mode", json_object_new_string(mode));
	json_object_object_add(r, "metadata", md);
	json_object_object_add(r, "timestamp", json_object_new_string(ts));
	return r;
}

/* interaction_metadata of the saved agent row (API.md 5.5). */
static char *save_metadata(struct job *j, struct json_object *result)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "primary_agent", json_object_new_string(j->prim.def->key));
	json_object_object_add(o, "coordination_mode",
			       json_object_get(jx_get(result, "coordination_mode")));
	/* the interactions as API.md 5.5 lists them: from, to, query, response, metadata */
	struct json_object *ia = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(j->interactions); i++) {
		struct json_object *e = json_object_array_get_idx(j->interactions, i);
		struct json_object *x = json_object_new_object();
		static const char *const keys[] = {"from_agent", "to_agent", "query", "response",
						   "metadata"};
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			struct json_object *v = jx_get(e, keys[k]);
			json_object_object_add(x, keys[k], v ? json_object_get(v) : NULL);
		}
		json_object_array_add(ia, x);
	}
	json_object_object_add(o, "agent_interactions", ia);
	struct json_object *pm = json_object_new_object(), *am = json_object_new_object();
	double total_s = 0;
	int64_t tokens = 0, hits = 0, misses = 0;
	const struct arun *all[JOB_MAX_RUNS + 1];
	int n = 0;
	for (int i = 0; i < j->nruns; i++)
		all[n++] = &j->runs[i];
	all[n++] = &j->prim;
	for (int i = 0; i < n; i++) {
		const struct arun *ar = all[i];
		if (!ar->finished)
			continue;
		int64_t t = (ar->in_tok > 0 ? ar->in_tok : 0) + (ar->out_tok > 0 ? ar->out_tok : 0);
		double s = (double)(ar->total_us / 1000) / 1000.0;
		total_s += s;
		tokens += t;
		bool hit = ar->cache_hit, miss = !ar->cache_hit && !j->declined;
		hits += hit;
		misses += miss;
		/* one entry per agent: an agent called twice (debate) adds up */
		struct json_object *e = jx_get(am, ar->def->key);
		if (!e) {
			e = json_object_new_object();
			json_object_object_add(e, "processing_time", jnum(0));
			json_object_object_add(e, "tokens", json_object_new_int64(0));
			json_object_object_add(e, "cache_hits", json_object_new_int(0));
			json_object_object_add(e, "cache_misses", json_object_new_int(0));
			json_object_object_add(e, "count", json_object_new_int(0));
			json_object_object_add(am, ar->def->key, e);
		}
		double ps = json_object_get_double(jx_get(e, "processing_time")) + s;
		json_object_object_add(e, "processing_time", jnum(ps));
		json_object_object_add(
			e, "tokens",
			json_object_new_int64(json_object_get_int64(jx_get(e, "tokens")) + t));
		json_object_object_add(
			e, "cache_hits",
			json_object_new_int(json_object_get_int(jx_get(e, "cache_hits")) + hit));
		json_object_object_add(
			e, "cache_misses",
			json_object_new_int(json_object_get_int(jx_get(e, "cache_misses")) + miss));
		json_object_object_add(
			e, "count",
			json_object_new_int(json_object_get_int(jx_get(e, "count")) + 1));
	}
	json_object_object_add(pm, "total_processing_time", jnum(total_s));
	json_object_object_add(pm, "total_tokens", json_object_new_int64(tokens));
	json_object_object_add(pm, "total_cache_hits", json_object_new_int64(hits));
	json_object_object_add(pm, "total_cache_misses", json_object_new_int64(misses));
	json_object_object_add(pm, "agent_metrics", am);
	json_object_object_add(o, "performance_metrics", pm);
	char *s = json_dup(o);
	json_object_put(o);
	return s;
}

/* Stores a feature's answer (jobs_store_feature); *result_text becomes the route's response. */
static int feature_store(struct job *j, struct ctx *c, const char *answer,
			 struct json_object *scored, char **result_text)
{
	const char *json = jobs_store_feature(
		c, job_kind_names[j->kind], j->who.tenant_id, j->who.user_id, j->product_id,
		j->request, answer ? answer : "",
		scored ? json_object_to_json_string_ext(scored, JSON_C_TO_STRING_PLAIN) : NULL);
	if (!json)
		return c->rc != RC_OK ? (int)c->rc : RC_INTERNAL;
	free(*result_text);
	*result_text = strdup(json);
	return RC_OK;
}

/* What job_end carries from one step to the next. */
struct job_ending {
	bool ok;                    /* the job succeeded (false once a score is no answer) */
	int status;                 /* HTTP status of a failure */
	const char *detail;         /* message of a failure (borrowed) */
	const char *etype;          /* error_type of a failure (borrowed) */
	struct json_object *scored; /* a score job's parsed answer, or NULL (owned) */
	char *answer;               /* the primary agent's answer, or NULL on failure (owned) */
	struct json_object *result; /* the job's result, or NULL on failure (owned) */
	char *result_text;          /* the route's response, or NULL (owned, malloc) */
	bool done;                  /* the row's end is stored by us */
};

/* The answer and the result of a job that succeeded; a score the agent did not give as JSON
 * turns the ending into a failure (API.md 1.10). */
static void job_end_answer(struct job *j, struct job_ending *e)
{
	if (e->ok && j->kind == JK_SCORE && !(e->scored = score_parse(j->prim.text))) {
		e->ok = false;
		e->status = 502;
		e->detail = "The scoring agent did not answer with the expected JSON; try again";
		e->etype = "bad_answer";
	}
	if (e->ok) {
		const char *t = j->prim.text ? j->prim.text : "";
		if (j->kind == JK_PHASE && j->capped)
			e->answer = truncate_answer(j->sent.p ? j->sent.p : "", j->sent.len);
		else
			e->answer = strdup(t);
	}
	e->result = e->ok ? job_result(j, e->answer) : NULL;
	e->result_text = e->result ? json_dup(e->result) : NULL;
	if (e->ok && is_export(j->kind)) {
		/* the route's answer is the job's result (API.md 1.11) */
		free(e->result_text);
		e->result_text = j->kind == JK_REVIEW ? review_result(j, e->answer)
						      : export_file(j, e->answer);
	}
}

/* The complete event (API.md 5.7): the primary agent's answer only, added to the job's
 * events. */
static void job_end_event(struct job *j, const struct job_ending *e)
{
	const char *answer = e->answer;
	struct json_object *ce = json_object_new_object();
	json_object_object_add(ce, "response", jstr(answer ? answer : ""));
	json_object_object_add(ce, "interactions", json_object_get(j->interactions));
	struct json_object *md = json_object_new_object();
	if (e->ok) {
		json_object_object_add(md, "mode",
				       json_object_get(jx_get(e->result, "coordination_mode")));
		json_object_object_add(md, "primary_agent",
				       json_object_new_string(j->prim.def->key));
		json_object_object_add(md, "supporting_agents", consulted_agents(j));
	} else {
		json_object_object_add(md, "error", jstr(e->detail));
		json_object_object_add(md, "error_type", jstr(e->etype));
		json_object_object_add(md, "partial", json_object_new_boolean(true));
		json_object_object_add(md, "status", json_object_new_int(e->status));
	}
	json_object_object_add(ce, "metadata", md);
	if (j->prim.def)
		json_object_object_add(ce, "agent", json_object_new_string(j->prim.def->key));
	if (j->kind == JK_PHASE) {
		json_object_object_add(ce, "content", jstr(answer ? answer : ""));
		json_object_object_add(ce, "word_count", json_object_new_int64(j->words));
	}
	job_add_event(j, "complete", ce, false);
}

/* The conversation rows of a multi-agent answer (jobs_save_conversation), in the ending's
 * transaction on c. */
static void job_end_save_conversation(struct job *j, struct ctx *c, const struct job_ending *e)
{
	struct json_object *ctxo = jx_get(j->request, "context");
	const char *sid = ctxo ? jx_get_str(ctxo, "session_id") : NULL;
	char title[64] = "New Conversation";
	if (j->product_id[0])
		snprintf(title, sizeof(title), "Product %.8s...", j->product_id);
	char *meta = save_metadata(j, e->result);
	jobs_save_conversation(c, j->id, j->who.tenant_id, j->who.user_id,
			       j->product_id[0] ? j->product_id : NULL,
			       sid && jx_is_uuid(sid) ? sid : NULL, title, j->query,
			       j->prim.def->key, e->answer, meta);
	free(meta);
}

/* Stores the ending in one transaction: the remaining events, a feature's answer, the row's
 * final state (only while the row is ours) and a multi-agent answer's conversation rows; then
 * caches the answers of a stored success. Sets e->done. */
static void job_end_store(struct job *j, struct job_ending *e)
{
	struct agentd *d = j->d;
	bool ok = e->ok;
	bool done = false;
	struct op o;
	op_begin(&o, d, j->id);
	if (j->cancelled) {
		/* the row says cancelled already: only the events are stored */
		done = job_flush(j, &o.c) == RC_OK;
	} else if (db_begin(&o.c) == RC_OK && job_flush(j, &o.c) == RC_OK &&
		   (!ok || !is_feature(j->kind) ||
		    feature_store(j, &o.c, e->answer, e->scored, &e->result_text) == RC_OK) &&
		   (ok ? jobs_complete(&o.c, j->id, d->owner, e->result_text, &done)
		       : jobs_fail(&o.c, j->id, d->owner, e->detail, &done)) == RC_OK) {
		if (done && ok && j->kind == JK_MULTI)
			job_end_save_conversation(j, &o.c, e);
		if (db_commit(&o.c) != RC_OK)
			done = false;
	} else {
		log_msg(LL_WARN, j->id, "job end not stored: %s", o.c.detail);
		done = false;
	}
	op_end(&o);
	if (done && ok && !j->cancelled) {
		for (int i = 0; i < j->nruns; i++)
			cache_put(j, &j->runs[i]);
		cache_put(j, &j->prim);
	}
	e->done = done;
}

/* The job's clients get its end: the streams the complete event, the waits the answer (each
 * shape rendered once) or the failure. */
static void job_end_clients(struct job *j, const struct job_ending *e)
{
	const struct jev *last = &j->evs[j->nevs - 1];
	char *shaped[SHAPE__MAX] = {NULL};
	while (j->clients) {
		struct client *cl = j->clients;
		if (cl->kind == CL_STREAM) {
			client_send(cl, j->run, last);
		} else if (j->cancelled) {
			client_answer_detail(cl, 409, "Job was cancelled");
		} else if (!e->ok) {
			client_answer_detail(cl, e->status, e->detail);
		} else {
			if (!shaped[cl->shape])
				shaped[cl->shape] = shape_result(e->result_text, cl->shape);
			client_answer(cl, 200, shaped[cl->shape]);
		}
	}
	for (int i = 0; i < SHAPE__MAX; i++)
		free(shaped[i]);
}

/* Logs the job's end and counts it; its clients get the end when it is stored (or the job was
 * cancelled), else they follow it through the database (clients_to_remote). */
static void job_end_report(struct job *j, const struct job_ending *e)
{
	struct agentd *d = j->d;
	int64_t ms = (now_us() - j->start_us) / 1000;
	const char *state = j->cancelled ? "cancelled" : e->ok ? "completed" : "failed";
	if (!e->done && !j->cancelled) {
		log_msg(LL_WARN, j->id,
			"job end state=lost kind=%s run=%d duration_ms=%lld (the row is no longer "
			"ours; clients follow it in the database)",
			job_kind_names[j->kind], j->run, (long long)ms);
		clients_to_remote(j);
		return;
	}
	log_msg(LL_INFO, j->id, "job end state=%s kind=%s run=%d attempts=%d duration_ms=%lld",
		state, job_kind_names[j->kind], j->run, j->attempts, (long long)ms);
	if (j->cancelled)
		d->m.jobs_cancelled++;
	else if (e->ok)
		d->m.jobs_completed++;
	else
		d->m.jobs_failed++;
	job_end_clients(j, e);
}

/*
 * Ends a job exactly once: its complete event, the remaining events and the row's final state
 * in one transaction (with the conversation rows of a multi-agent answer), then the complete
 * event to the streams and the answer to the waits. When the row is no longer ours (the lease
 * was lost, or the database failed) nothing is sent as final: the clients follow the job
 * through the database, where whoever finishes it will have stored its end.
 */
static void job_end(struct job *j, bool ok, int status, const char *detail, const char *etype)
{
	struct agentd *d = j->d;
	if (j->ending)
		return;
	j->ending = true;
	job_abort_calls(j);
	evtimer_del(j->flush);

	struct job_ending e = {.ok = ok, .status = status, .detail = detail, .etype = etype};
	job_end_answer(j, &e);
	job_end_event(j, &e);
	job_end_store(j, &e);
	job_end_report(j, &e);
	json_object_put(e.result);
	json_object_put(e.scored);
	free(e.result_text);
	free(e.answer);
	job_free(j);
	claim_more(d);
}

/* A cancel (NOTIFY agent_jobs_cancel): provider calls stop, the streams get the end. */
static void job_cancel(struct job *j)
{
	if (j->ending)
		return;
	j->cancelled = true;
	job_abort_calls(j);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string("Job was cancelled"));
	json_object_object_add(o, "agent", j->prim.def ? jstr(j->prim.def->key) : NULL);
	json_object_object_add(o, "error_type", json_object_new_string("cancelled"));
	job_emit(j, "error", o);
	job_end(j, false, 409, "Job was cancelled", "cancelled");
}

/* The lease is gone (renewal did not return the job): stop, keep nothing. */
static void job_lost(struct job *j)
{
	log_msg(LL_WARN, j->id, "lease lost: stopping the job here");
	j->ending = true;
	job_abort_calls(j);
	evtimer_del(j->flush);
	clients_to_remote(j);
	job_free(j);
}

/* ------------------------------------------------------------------------------ claiming */

static void claim_more(struct agentd *d)
{
	while (!d->stopping && d->nrunning < d->cfg->agent_max_concurrent) {
		struct op o;
		op_begin(&o, d, "claim");
		PGresult *res = jobs_claim(&o.c, d->owner, d->cfg->agent_job_lease_s, NULL);
		struct job *j = res && PQntuples(res) == 1 ? job_new(d, res) : NULL;
		if (!res)
			log_msg(LL_WARN, NULL, "claim failed: %s", o.c.detail);
		op_end(&o);
		if (!j)
			return;
		job_run(j);
	}
}

/* Claims job_id for a client that asked for it (affinity). The job, or NULL. */
static struct job *claim_one(struct agentd *d, const char *job_id)
{
	if (d->stopping || d->nrunning >= d->cfg->agent_max_concurrent)
		return NULL;
	struct op o;
	op_begin(&o, d, job_id);
	PGresult *res = jobs_claim(&o.c, d->owner, d->cfg->agent_job_lease_s, job_id);
	struct job *j = res && PQntuples(res) == 1 ? job_new(d, res) : NULL;
	op_end(&o);
	return j;
}

static void on_renew(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct agentd *d = arg;
	if (!d->jobs)
		return;
	struct op o;
	op_begin(&o, d, "lease");
	PGresult *res = jobs_renew(&o.c, d->owner, d->cfg->agent_job_lease_s);
	if (!res) {
		log_msg(LL_WARN, NULL, "lease renewal failed: %s", o.c.detail);
		op_end(&o);
		return;
	}
	for (struct job *j = d->jobs, *next; j; j = next) {
		next = j->next;
		bool held = false;
		for (int i = 0; i < PQntuples(res) && !held; i++)
			held = strcmp(PQgetvalue(res, i, 0), j->id) == 0;
		if (!held && !j->ending)
			job_lost(j);
	}
	op_end(&o);
}

static void on_expire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct agentd *d = arg;
	struct op o;
	op_begin(&o, d, "lease");
	PGresult *res = jobs_fail_expired(&o.c);
	for (int i = 0; res && i < PQntuples(res); i++) {
		log_msg(LL_WARN, PQgetvalue(res, i, 0),
			"job end state=failed (lease expired with no attempt left)");
		d->m.jobs_failed++;
	}
	op_end(&o);
	claim_more(d); /* jobs whose lease ran out are claimable now */
}

/* ------------------------------------------------------------------------------ V0 follow-up */

/* A V0 generation in progress is followed here, whoever asked for it and whether or not a
 * client asks (issue 16 item 3; app/design.h, sql/0009_design_follow.sql). Its state is the
 * design_mockups row, not this process: every design_poll_s / 2 the timer marks timeout the
 * rows past follow_until and claims the due ones (FOR UPDATE SKIP LOCKED; the claim moves
 * next_check_at past the longest check, so it is also the lease: an agentd killed during a
 * check leaves a claim that runs out by itself, and any agentd takes the row again). Each
 * claimed row is one GET /v1/chats/{id} with the owner's V0 key (keys_user_secret, as the
 * status routes), run by lib/httpc on the loop's curl multi; its outcome is written only if
 * the row still holds the claim. V0's answer: completed / failed / still in_progress (next
 * check in design_poll_s). 401/403/404: failed with a fixed sentence. 429, 5xx, no answer, no
 * key: checked again later, the wait doubling per failure in a row (up to 32 periods, at least
 * V0's Retry-After), until follow_until ends it. The key lives in the check's arena only
 * (wiped with it); logs carry the mockup id, the outcome class and the HTTP status. */

#define FOLLOW_MAX 32          /* V0 checks in flight at once, per agentd */
#define FOLLOW_LEASE_EXTRA_S 5 /* a claim outlives the longest check by this much */
#define FOLLOW_BACKOFF_MAX 32  /* the longest wait after failures, in design_poll_s periods */
#define FOLLOW_RETRY_AFTER_MAX_S 3600

struct follow {
	struct agentd *d;           /* owner */
	struct follow *prev, *next; /* d->follows */
	char id[40];                /* design_mockups.id */
	char claim[64];             /* next_check_at as claimed: the claim to write under */
	int failures;               /* check_failures before this check */
	struct principal who;       /* the mockup's owner: whose V0 key */
	struct arena *a;            /* the check's memory (the key: wiped with it) */
	struct httpc_call *call;    /* in flight, or NULL */
};

static void follow_free(struct follow *f)
{
	struct agentd *d = f->d;
	if (f->call) {
		evcurl_remove(d->ec, httpc_easy(f->call));
		httpc_abort(f->call);
	}
	if (f->prev)
		f->prev->next = f->next;
	else if (d->follows == f)
		d->follows = f->next;
	if (f->next)
		f->next->prev = f->prev;
	d->nfollows--;
	arena_free(f->a);
	free(f);
}

/* The wait before the next check after a failure: design_poll_s doubled per failure in a row,
 * at most FOLLOW_BACKOFF_MAX periods, at least V0's Retry-After (bounded). */
static int64_t follow_backoff_s(const struct agentd *d, int failures, int64_t retry_after_s)
{
	int64_t poll = d->cfg->design_poll_s, max = poll * FOLLOW_BACKOFF_MAX;
	int k = failures + 1 < 5 ? failures + 1 : 5;
	int64_t delay = poll << k;
	if (delay > max)
		delay = max;
	if (retry_after_s > delay)
		delay = retry_after_s < FOLLOW_RETRY_AFTER_MAX_S ? retry_after_s
								 : FOLLOW_RETRY_AFTER_MAX_S;
	return delay;
}

/* Writes a check's outcome (op on the pool) and frees the check. */
static void follow_end(struct follow *f, enum httpc_status st, const struct httpc_res *res,
		       struct json_object *chat)
{
	struct agentd *d = f->d;
	struct op o;
	op_begin(&o, d, f->id);
	const char *what;
	int rc;
	if (st == HTTPC_OK) {
		struct design_chat ch;
		design_chat_read(o.a, chat, &ch);
		bool done = false;
		rc = design_record(&o.c, f->id, &ch, d->cfg->design_poll_s, f->claim, &done);
		what = done ? ch.status : "superseded";
	} else if (st == HTTPC_E_AUTH) {
		rc = design_follow_fail(&o.c, f->id, f->claim,
					"V0 rejected the owner's V0 key: save a valid key with "
					"POST /api/api-keys and submit the design again");
		what = "failed";
	} else if (st == HTTPC_E_NOTFOUND) {
		rc = design_follow_fail(&o.c, f->id, f->claim,
					"V0 does not know this chat any more: submit the design "
					"again");
		what = "failed";
	} else {
		int64_t delay = follow_backoff_s(d, f->failures, res ? res->retry_after_s : -1);
		rc = design_follow_retry(&o.c, f->id, f->claim, delay);
		what = "retry";
	}
	if ((unsigned)st < HTTPC__MAX)
		d->m.design_checks[st]++;
	if (rc != RC_OK)
		log_msg(LL_WARN, f->id,
			"design follow-up not recorded (the claim will run out): %s", o.c.detail);
	else
		log_msg(st == HTTPC_OK || st == HTTPC_E_QUOTA || st == HTTPC_E_SERVER ? LL_INFO
										      : LL_WARN,
			f->id, "design check outcome=%s http=%d dur_ms=%lld status=%s",
			httpc_status_str(st), res ? res->http_status : 0,
			res ? (long long)res->total_ms : 0LL, what);
	op_end(&o);
	follow_free(f);
}

/* Starts the check of one claimed row (row i of res). */
static void follow_start(struct agentd *d, PGresult *res, int i)
{
	struct follow *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	f->d = d;
	snprintf(f->id, sizeof(f->id), "%s", PQgetvalue(res, i, 0));
	snprintf(f->who.user_id, sizeof(f->who.user_id), "%s", PQgetvalue(res, i, 1));
	snprintf(f->who.tenant_id, sizeof(f->who.tenant_id), "%s", PQgetvalue(res, i, 2));
	const char *chat = PQgetvalue(res, i, 3);
	snprintf(f->claim, sizeof(f->claim), "%s", PQgetvalue(res, i, 4));
	f->failures = (int)strtol(PQgetvalue(res, i, 5), NULL, 10);
	f->a = arena_new(8192);
	f->next = d->follows;
	if (d->follows)
		d->follows->prev = f;
	d->follows = f;
	d->nfollows++;

	/* the owner's key, opened exactly as the status routes open it */
	struct ctx c;
	ctx_init(&c, f->a, d->pool, f->id);
	c.who = &f->who;
	const char *key = keys_user_secret(&c, "v0");
	db_done(&c);
	if (!key) {
		if (c.rc != RC_OK)
			log_msg(LL_WARN, f->id,
				"design check: the owner's V0 key not read (%s); "
				"retrying later",
				c.detail);
		else
			log_msg(LL_WARN, f->id,
				"design check: the owner has no usable V0 key; retrying later");
		follow_end(f, HTTPC_E_UNREACHABLE, NULL, NULL);
		return;
	}
	const char *base = d->cfg->v0_api_url;
	size_t n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	char *auth = arena_printf(f->a, "Authorization: Bearer %s", key);
	int64_t total = d->cfg->ext_timeout_ms;
	struct httpc_req rq = {
		.method = "GET",
		.url = arena_printf(f->a, "%.*s/v1/chats/%s", (int)n, base,
				    httpc_urlencode(f->a, chat)),
		.headers = {"Accept: application/json", auth},
		.connect_timeout_ms = total < 10000 ? total : 10000,
		.total_timeout_ms = total,
		.max_body = 1u << 20,
	};
	enum httpc_status refused;
	f->call = httpc_start(&rq, &refused);
	explicit_bzero(auth, strlen(auth)); /* copied into the call's wiped header list */
	if (!f->call || evcurl_add(d->ec, httpc_easy(f->call)) != 0) {
		if (f->call) {
			httpc_abort(f->call);
			f->call = NULL;
			refused = HTTPC_E_PROTOCOL;
		}
		log_msg(LL_WARN, f->id, "design check could not start (%s; v0_api_url?)",
			httpc_status_str(refused));
		follow_end(f, refused, NULL, NULL);
	}
}

/* The evcurl done callback's share: true when easy was a V0 check (then handled). */
static bool follow_transfer(struct agentd *d, CURL *easy, CURLcode cc)
{
	struct follow *f = d->follows;
	while (f && !(f->call && httpc_easy(f->call) == easy))
		f = f->next;
	if (!f)
		return false;
	struct httpc_res res;
	enum httpc_status st = httpc_finish(f->call, cc, &res);
	f->call = NULL;
	struct json_object *o = NULL;
	if (st == HTTPC_OK) {
		o = res.body ? jx_parse(res.body, res.body_len, 32) : NULL;
		if (!o || !json_object_is_type(o, json_type_object))
			st = res.status = HTTPC_E_PROTOCOL;
	}
	follow_end(f, st, &res, o);
	json_object_put(o);
	httpc_res_free(&res);
	return true;
}

static void on_follow_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct agentd *d = arg;
	if (d->stopping)
		return;
	struct op o;
	op_begin(&o, d, "design");
	PGresult *res = design_follow_expire(&o.c);
	for (int i = 0; res && i < PQntuples(res); i++) {
		log_msg(LL_INFO, PQgetvalue(res, i, 0),
			"design follow-up ended status=timeout (follow_until passed)");
		d->m.design_timeouts++;
	}
	if (!res)
		log_msg(LL_WARN, NULL, "design timeout sweep failed: %s", o.c.detail);
	res = NULL;
	int room = FOLLOW_MAX - d->nfollows;
	if (room > 0) {
		int64_t lease = d->cfg->ext_timeout_ms / 1000 + 1 + FOLLOW_LEASE_EXTRA_S;
		res = design_follow_claim(&o.c, room, lease);
		if (!res)
			log_msg(LL_WARN, NULL, "design claim failed: %s", o.c.detail);
	}
	db_done(&o.c); /* the checks open their own contexts */
	for (int i = 0; res && i < PQntuples(res); i++)
		follow_start(d, res, i);
	op_end(&o);
}

/* Stopping: the checks in flight end here, their claims handed back (due at once). */
static void follow_stop(struct agentd *d)
{
	while (d->follows) {
		struct follow *f = d->follows;
		struct op o;
		op_begin(&o, d, f->id);
		if (design_follow_release(&o.c, f->id, f->claim) != RC_OK)
			log_msg(LL_WARN, f->id,
				"design claim not handed back (it will run out): %s", o.c.detail);
		op_end(&o);
		follow_free(f);
	}
}

/* ------------------------------------------------------------------------------ LISTEN */

static void listen_connect(struct agentd *d);

static void listen_drop(struct agentd *d)
{
	if (d->lev) {
		event_free(d->lev);
		d->lev = NULL;
	}
	PQfinish(d->lconn);
	d->lconn = NULL;
	struct timeval tv = {1, 0};
	evtimer_add(d->lretry, &tv);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct agentd *d = arg;
	if (!PQconsumeInput(d->lconn)) {
		log_msg(LL_WARN, NULL, "LISTEN connection lost; reconnecting");
		listen_drop(d);
		return;
	}
	bool claim = false;
	PGnotify *n;
	while ((n = PQnotifies(d->lconn)) != NULL) {
		if (strcmp(n->relname, "agent_jobs_cancel") == 0) {
			struct job *j = job_find(d, n->extra);
			if (j)
				job_cancel(j);
		} else {
			claim = true;
		}
		PQfreemem(n);
	}
	if (claim)
		claim_more(d);
}

static void on_listen_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	listen_connect(arg);
}

/* The LISTEN connection; on failure retried every second. Connecting and the LISTEN
 * statement block briefly (local database); afterwards the connection is only read when
 * its socket is readable. */
static void listen_connect(struct agentd *d)
{
	const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
	const char *vals[] = {d->srv->database_url, "ideaforge-agentd-listen", "3", NULL};
	d->lconn = PQconnectdbParams(keys, vals, 1);
	if (!d->lconn || PQstatus(d->lconn) != CONNECTION_OK) {
		log_msg(LL_WARN, NULL, "LISTEN connection failed; retrying in 1 s");
		listen_drop(d);
		return;
	}
	PGresult *r = PQexec(d->lconn, "LISTEN agent_jobs; LISTEN agent_jobs_cancel");
	bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok || PQsetnonblocking(d->lconn, 1) != 0) {
		listen_drop(d);
		return;
	}
	d->lev = event_new(d->base, PQsocket(d->lconn), EV_READ | EV_PERSIST, on_notify, d);
	event_add(d->lev, NULL);
	claim_more(d); /* what was queued while we did not listen */
}

/* ------------------------------------------------------------------------------ remote polling */

/* A client of a job that does not run here: claims it when it is claimable (affinity), else
 * sends what the database has and polls again. */
static void client_poll_now(struct client *cl)
{
	struct agentd *d = cl->d;
	if (!d->stopping) {
		struct job *j = job_find(d, cl->job_id);
		if (j) {
			client_attach(cl, j);
			return;
		}
	}
	struct op o;
	op_begin(&o, d, cl->job_id);
	PGresult *row = jobs_get(&o.c, cl->job_id);
	if (!row) {
		op_end(&o);
		goto again;
	}
	if (PQntuples(row) == 0) {
		op_end(&o);
		if (cl->kind == CL_WAIT) {
			client_answer_detail(cl, 404, "Job not found");
		} else if (!cl->started) {
			client_unlink(cl);
			evhttp_connection_set_closecb(evhttp_request_get_connection(cl->req), NULL,
						      NULL);
			reply_detail(cl->req, 404, "Job not found");
			client_free(cl);
		} else {
			client_close(cl);
		}
		return;
	}
	if (cl->kind == CL_STREAM)
		client_start_stream(cl);
	const char *state = db_get(row, 0, "state");
	bool claimable = strcmp(db_get(row, 0, "claimable"), "t") == 0;
	if (claimable && !d->stopping) {
		op_end(&o);
		struct job *j = claim_one(d, cl->job_id);
		if (j) {
			job_run(j); /* attaches cl */
			return;
		}
		goto again;
	}
	bool final = strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
		     strcmp(state, "cancelled") == 0;
	if (cl->kind == CL_WAIT) {
		if (!final) {
			op_end(&o);
			goto again;
		}
		if (strcmp(state, "completed") == 0) {
			const char *res = db_get(row, 0, "result");
			char *s = shape_result(res ? res : "{}", cl->shape);
			op_end(&o);
			client_answer(cl, 200, s);
			free(s);
		} else if (strcmp(state, "cancelled") == 0) {
			op_end(&o);
			client_answer_detail(cl, 409, "Job was cancelled");
		} else {
			const char *err = db_get(row, 0, "error");
			char *detail = strdup(err ? err : "Internal server error");
			const char *ce = jobs_last_event(&o.c, cl->job_id, "complete");
			struct json_object *c = ce ? jx_parse(ce, strlen(ce), 32) : NULL;
			struct json_object *md = c ? jx_get(c, "metadata") : NULL;
			int st = md ? (int)jx_get_int(md, "status", 500) : 500;
			json_object_put(c);
			op_end(&o);
			client_answer_detail(cl, st >= 400 && st < 600 ? st : 500, detail);
			free(detail);
		}
		return;
	}
	int run = (int)strtol(db_get(row, 0, "max_run"), NULL, 10);
	if (run > 0) {
		client_start_stream(cl);
		if (cl->run != run) {
			if (cl->run > 0)
				client_reset(cl, run);
			cl->run = run;
			cl->seq = 0;
		}
		PGresult *evs = jobs_events(&o.c, cl->job_id, run, cl->seq);
		for (int i = 0; evs && i < PQntuples(evs); i++) {
			const char *name = PQgetvalue(evs, i, 2), *data = PQgetvalue(evs, i, 3);
			struct json_object *dj = jx_parse(data, strlen(data), 64);
			struct jev ev = {.seq = strtoll(PQgetvalue(evs, i, 0), NULL, 10),
					 .name = name,
					 .named = (char *)data};
			ev.dataform = dj ? dataform_of(name, dj) : NULL;
			json_object_put(dj);
			bool closed = client_send(cl, run, &ev);
			free(ev.dataform);
			if (closed) {
				op_end(&o);
				return;
			}
		}
	}
	if (final) {
		/* ended without a stored complete event (expired, cancelled before it ran) */
		const char *err = db_get(row, 0, "error");
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "error", jstr(err ? err : "Job was cancelled"));
		json_object_object_add(e, "agent", NULL);
		int r = cl->run > 0 ? cl->run : 1;
		int64_t s = cl->seq;
		op_end(&o);
		if (client_send_adhoc(cl, r, s + 1, "error", e))
			return;
		struct json_object *c = json_object_new_object(), *md = json_object_new_object();
		json_object_object_add(md, "error", jstr(err ? err : "Job was cancelled"));
		json_object_object_add(md, "partial", json_object_new_boolean(true));
		json_object_object_add(c, "response", json_object_new_string(""));
		json_object_object_add(c, "metadata", md);
		client_send_adhoc(cl, r, s + 2, "complete", c);
		return;
	}
	op_end(&o);
again:;
	struct timeval tv = {0, POLL_MS * 1000};
	evtimer_add(cl->poll, &tv);
}

/* ------------------------------------------------------------------------------ HTTP */

static void rss_bytes(int64_t *rss)
{
	*rss = -1;
	FILE *f = fopen("/proc/self/statm", "re");
	long long size, res;
	if (f && fscanf(f, "%lld %lld", &size, &res) == 2)
		*rss = res * sysconf(_SC_PAGESIZE);
	if (f)
		fclose(f);
}

static void serve_status(struct agentd *d, struct evhttp_request *req)
{
	int64_t rss;
	rss_bytes(&rss);
	struct op o;
	op_begin(&o, d, "status");
	int64_t queued = jobs_pending(&o.c);
	op_end(&o);
	struct json_object *s = json_object_new_object();
	json_object_object_add(s, "service", json_object_new_string("ideaforge-agentd"));
	json_object_object_add(s, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(s, "owner", json_object_new_string(d->owner));
	json_object_object_add(s, "uptime_s",
			       json_object_new_int64((now_us() - d->started_us) / 1000000));
	json_object_object_add(s, "stopping", json_object_new_boolean(d->stopping));
	json_object_object_add(s, "jobs_queued", json_object_new_int64(queued));
	json_object_object_add(s, "jobs_running", json_object_new_int(d->nrunning));
	json_object_object_add(s, "max_concurrent",
			       json_object_new_int64(d->cfg->agent_max_concurrent));
	json_object_object_add(s, "jobs_completed",
			       json_object_new_int64((int64_t)d->m.jobs_completed));
	json_object_object_add(s, "jobs_failed", json_object_new_int64((int64_t)d->m.jobs_failed));
	json_object_object_add(s, "jobs_retried",
			       json_object_new_int64((int64_t)d->m.jobs_retried));
	json_object_object_add(s, "jobs_cancelled",
			       json_object_new_int64((int64_t)d->m.jobs_cancelled));
	json_object_object_add(s, "streams_open", json_object_new_int(d->nstreams));
	json_object_object_add(s, "waits_open", json_object_new_int(d->nwaits));
	json_object_object_add(s, "provider_calls_in_flight",
			       json_object_new_int(evcurl_active(d->ec)));
	json_object_object_add(s, "rss_bytes", json_object_new_int64(rss));
	struct json_object *jobs = json_object_new_array();
	for (struct job *j = d->jobs; j; j = j->next) {
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "id", json_object_new_string(j->id));
		json_object_object_add(e, "kind", json_object_new_string(job_kind_names[j->kind]));
		json_object_object_add(e, "run", json_object_new_int(j->run));
		json_object_object_add(e, "events", json_object_new_int64((int64_t)j->nevs));
		json_object_array_add(jobs, e);
	}
	json_object_object_add(s, "jobs", jobs);
	reply_json(req, 200, json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN));
	json_object_put(s);
}

static void hist_write(struct buf *b, const char *name, const char *prov, const struct hist *h)
{
	uint64_t cum = 0;
	for (size_t i = 0; i < NBOUNDS; i++) {
		cum += h->le[i];
		buf_printf(b, "%s_bucket{provider=\"%s\",le=\"%g\"} %llu\n", name, prov,
			   (double)hist_bounds_ms[i] / 1000.0, (unsigned long long)cum);
	}
	cum += h->le[NBOUNDS];
	buf_printf(b, "%s_bucket{provider=\"%s\",le=\"+Inf\"} %llu\n", name, prov,
		   (unsigned long long)cum);
	buf_printf(b, "%s_sum{provider=\"%s\"} %.6f\n%s_count{provider=\"%s\"} %llu\n", name, prov,
		   h->sum_s, name, prov, (unsigned long long)h->count);
}

static void serve_metrics(struct agentd *d, struct evhttp_request *req)
{
	int64_t rss;
	rss_bytes(&rss);
	struct op o;
	op_begin(&o, d, "metrics");
	int64_t queued = jobs_pending(&o.c);
	op_end(&o);
	const struct metrics *m = &d->m;
	struct buf b;
	buf_init(&b, NULL);
	buf_printf(&b,
		   "# HELP ideaforge_agentd_jobs_queued Jobs waiting in the queue (all agentds).\n"
		   "# TYPE ideaforge_agentd_jobs_queued gauge\nideaforge_agentd_jobs_queued %lld\n"
		   "# HELP ideaforge_agentd_jobs_running Jobs running in this agentd.\n"
		   "# TYPE ideaforge_agentd_jobs_running gauge\nideaforge_agentd_jobs_running %d\n"
		   "# HELP ideaforge_agentd_jobs_total Job runs of this agentd by outcome.\n"
		   "# TYPE ideaforge_agentd_jobs_total counter\n"
		   "ideaforge_agentd_jobs_total{outcome=\"claimed\"} %llu\n"
		   "ideaforge_agentd_jobs_total{outcome=\"done\"} %llu\n"
		   "ideaforge_agentd_jobs_total{outcome=\"failed\"} %llu\n"
		   "ideaforge_agentd_jobs_total{outcome=\"retried\"} %llu\n"
		   "ideaforge_agentd_jobs_total{outcome=\"cancelled\"} %llu\n"
		   "ideaforge_agentd_jobs_total{outcome=\"handed_back\"} %llu\n"
		   "# HELP ideaforge_agentd_streams_open Event streams open.\n"
		   "# TYPE ideaforge_agentd_streams_open gauge\nideaforge_agentd_streams_open %d\n"
		   "# HELP ideaforge_agentd_waits_open Result waits open.\n"
		   "# TYPE ideaforge_agentd_waits_open gauge\nideaforge_agentd_waits_open %d\n"
		   "# HELP ideaforge_agentd_rss_bytes Resident memory.\n"
		   "# TYPE ideaforge_agentd_rss_bytes gauge\nideaforge_agentd_rss_bytes %lld\n",
		   (long long)queued, d->nrunning, (unsigned long long)m->jobs_claimed,
		   (unsigned long long)m->jobs_completed, (unsigned long long)m->jobs_failed,
		   (unsigned long long)m->jobs_retried, (unsigned long long)m->jobs_cancelled,
		   (unsigned long long)m->jobs_handed_back, d->nstreams, d->nwaits, (long long)rss);
	buf_puts(&b, "# HELP ideaforge_agentd_provider_calls_total Provider calls by outcome.\n"
		     "# TYPE ideaforge_agentd_provider_calls_total counter\n");
	for (int p = 0; p < LLM__MAX; p++)
		for (int s = 0; s < LLM__SMAX; s++)
			if (m->calls[p][s])
				buf_printf(&b,
					   "ideaforge_agentd_provider_calls_total{provider=\"%s\","
					   "status=\"%s\"} %llu\n",
					   llm_provider_name(p), llm_status_str(s),
					   (unsigned long long)m->calls[p][s]);
	buf_puts(&b, "# HELP ideaforge_agentd_provider_errors_total Failed provider calls by HTTP "
		     "status class (0: no answer).\n"
		     "# TYPE ideaforge_agentd_provider_errors_total counter\n");
	for (int p = 0; p < LLM__MAX; p++)
		for (int c = 0; c < 6; c++)
			if (c != 2 && m->http_status[p][c])
				buf_printf(&b,
					   "ideaforge_agentd_provider_errors_total{provider=\"%s\","
					   "http_status=\"%s\"} %llu\n",
					   llm_provider_name(p),
					   (const char *[]){"none", "1xx", "2xx", "3xx", "4xx",
							    "5xx"}[c],
					   (unsigned long long)m->http_status[p][c]);
	buf_printf(&b,
		   "# HELP ideaforge_agentd_design_checks_in_flight V0 checks running here.\n"
		   "# TYPE ideaforge_agentd_design_checks_in_flight gauge\n"
		   "ideaforge_agentd_design_checks_in_flight %d\n"
		   "# HELP ideaforge_agentd_design_timeouts_total V0 generations marked timeout "
		   "here.\n# TYPE ideaforge_agentd_design_timeouts_total counter\n"
		   "ideaforge_agentd_design_timeouts_total %llu\n"
		   "# HELP ideaforge_agentd_design_checks_total V0 checks by outcome (no key and "
		   "unreachable count as unreachable).\n"
		   "# TYPE ideaforge_agentd_design_checks_total counter\n",
		   d->nfollows, (unsigned long long)m->design_timeouts);
	for (int st = 0; st < HTTPC__MAX; st++)
		buf_printf(&b, "ideaforge_agentd_design_checks_total{outcome=\"%s\"} %llu\n",
			   httpc_status_str(st), (unsigned long long)m->design_checks[st]);
	buf_puts(&b, "# HELP ideaforge_agentd_provider_retries_total Provider calls retried.\n"
		     "# TYPE ideaforge_agentd_provider_retries_total counter\n");
	for (int p = 0; p < LLM__MAX; p++)
		buf_printf(&b, "ideaforge_agentd_provider_retries_total{provider=\"%s\"} %llu\n",
			   llm_provider_name(p), (unsigned long long)m->call_retries[p]);
	buf_puts(&b, "# HELP ideaforge_agentd_provider_latency_seconds Provider call duration.\n"
		     "# TYPE ideaforge_agentd_provider_latency_seconds histogram\n");
	for (int p = 0; p < LLM__MAX; p++)
		hist_write(&b, "ideaforge_agentd_provider_latency_seconds", llm_provider_name(p),
			   &m->latency[p]);
	buf_puts(&b, "# HELP ideaforge_agentd_first_token_seconds Provider call start to first "
		     "token.\n# TYPE ideaforge_agentd_first_token_seconds histogram\n");
	for (int p = 0; p < LLM__MAX; p++)
		hist_write(&b, "ideaforge_agentd_first_token_seconds", llm_provider_name(p),
			   &m->first_token[p]);
	struct evbuffer *eb = evbuffer_new();
	evbuffer_add(eb, b.p, b.len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", eb);
	evbuffer_free(eb);
	buf_free(&b);
}

/* "run:seq" of Last-Event-ID; 0:0 when absent or malformed. */
static void parse_last_id(const char *s, int *run, int64_t *seq)
{
	*run = 0;
	*seq = 0;
	if (!s)
		return;
	char *end;
	long r = strtol(s, &end, 10);
	if (*end != ':' || r <= 0)
		return;
	long long q = strtoll(end + 1, &end, 10);
	if (*end || q < 0)
		return;
	*run = (int)r;
	*seq = q;
}

static void serve_job(struct agentd *d, struct evhttp_request *req, const char *id,
		      enum client_kind kind, struct evkeyvalq *q)
{
	if (d->stopping) {
		reply_detail(req, 503, "The AI service is restarting; please retry");
		return;
	}
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		reply_detail(req, 503, "Out of memory");
		return;
	}
	cl->d = d;
	cl->kind = kind;
	cl->req = req;
	snprintf(cl->job_id, sizeof(cl->job_id), "%s", id);
	const char *format = evhttp_find_header(q, "format");
	cl->dataform = format && (strcmp(format, "data") == 0 || strcmp(format, "design") == 0);
	const char *shape = evhttp_find_header(q, "shape");
	cl->shape = !shape                                ? SHAPE_KIND
		    : strcmp(shape, "agent") == 0         ? SHAPE_AGENT
		    : strcmp(shape, "multi_agent") == 0   ? SHAPE_MULTI
		    : strcmp(shape, "design_prompt") == 0 ? SHAPE_DESIGN
		    : strcmp(shape, "file") == 0          ? SHAPE_FILE
							  : SHAPE_KIND;
	parse_last_id(evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID"),
		      &cl->run, &cl->seq);
	cl->poll = evtimer_new(d->base, client_on_poll, cl);
	if (kind == CL_STREAM) {
		d->nstreams++;
		cl->hb = event_new(d->base, -1, EV_PERSIST, client_on_heartbeat, cl);
		struct timeval tv = {d->cfg->agent_heartbeat_s, 0};
		evtimer_add(cl->hb, &tv);
	} else {
		d->nwaits++;
	}
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), client_on_close, cl);
	list_add(&d->remote, cl);
	client_poll_now(cl);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct agentd *d = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = evhttp_uri_get_path(uri);
	if (!path)
		path = "/";
	if (strncmp(path, "/_agentd/", 9) == 0)
		path += 8;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		reply_detail(req, 405, "Method Not Allowed");
		return;
	}
	if (strcmp(path, "/status") == 0) {
		serve_status(d, req);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		serve_metrics(d, req);
		return;
	}
	char id[40];
	char what[16];
	int n = 0;
	if (sscanf(path, "/jobs/%36[0-9a-fA-F-]/%15[a-z]%n", id, what, &n) == 2 &&
	    path[n] == '\0' && jx_is_uuid(id) &&
	    (strcmp(what, "events") == 0 || strcmp(what, "wait") == 0)) {
		struct evkeyvalq q;
		const char *qs = evhttp_uri_get_query(uri);
		evhttp_parse_query_str(qs ? qs : "", &q); /* initialises q */
		serve_job(d, req, id, strcmp(what, "events") == 0 ? CL_STREAM : CL_WAIT, &q);
		evhttp_clear_headers(&q);
		return;
	}
	reply_detail(req, 404, "Not Found");
}

/* Binds agentd_listen: unix:/path (mode socket_mode, so nginx's group can connect) or
 * host:port. Returns 0, or -1 with err. */
static int http_listen(struct agentd *d, char *err, size_t errlen)
{
	const char *l = d->cfg->agentd_listen;
	if (strncmp(l, "unix:", 5) == 0) {
		const char *path = l + 5;
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(path) >= sizeof(sa.sun_path)) {
			snprintf(err, errlen, "agentd_listen '%s': path too long", l);
			return -1;
		}
		memcpy(sa.sun_path, path, strlen(path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -1;
		}
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    chmod(path, (mode_t)d->srv->socket_mode) < 0 ||
		    listen(fd, (int)d->srv->listen_backlog) < 0) {
			snprintf(err, errlen, "agentd_listen '%s': %s", l, strerror(errno));
			close(fd);
			return -1;
		}
		if (!evhttp_accept_socket_with_handle(d->http, fd)) {
			snprintf(err, errlen, "agentd_listen '%s': evhttp refused the socket", l);
			close(fd);
			return -1;
		}
		return 0;
	}
	char host[256];
	const char *colon = strrchr(l, ':');
	if (!colon || colon == l || (size_t)(colon - l) >= sizeof(host)) {
		snprintf(err, errlen, "agentd_listen '%s': expected unix:/path or host:port", l);
		return -1;
	}
	memcpy(host, l, (size_t)(colon - l));
	host[colon - l] = '\0';
	if (!evhttp_bind_socket_with_handle(d->http, host, (ev_uint16_t)atoi(colon + 1))) {
		snprintf(err, errlen, "agentd_listen '%s': cannot bind", l);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------------ stop */

/* SIGTERM/SIGINT: claim nothing more, stop the provider calls, hand the running jobs back
 * (their events so far stay stored; NOTIFY wakes the other agentds), end every request. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct agentd *d = arg;
	if (d->stopping)
		return;
	d->stopping = true;
	sysd_notify("STOPPING=1");
	log_msg(LL_INFO, NULL, "signal %d: handing %d running job(s) back and stopping", (int)sig,
		d->nrunning);
	while (d->jobs) {
		struct job *j = d->jobs;
		j->ending = true;
		job_abort_calls(j);
		evtimer_del(j->flush);
		struct op o;
		op_begin(&o, d, j->id);
		if (job_flush(j, &o.c) != RC_OK || jobs_handback(&o.c, j->id, d->owner) != RC_OK)
			log_msg(LL_WARN, j->id, "hand back failed (the lease will expire): %s",
				o.c.detail);
		else
			log_msg(LL_INFO, j->id, "job end state=pending (handed back) run=%d",
				j->run);
		op_end(&o);
		d->m.jobs_handed_back++;
		while (j->clients) {
			struct client *cl = j->clients;
			if (cl->kind == CL_STREAM)
				client_close(cl);
			else
				client_answer_detail(cl, 503,
						     "The AI service is restarting; please retry");
		}
		job_free(j);
	}
	while (d->remote) {
		struct client *cl = d->remote;
		if (cl->kind == CL_STREAM)
			client_close(cl);
		else
			client_answer_detail(cl, 503, "The AI service is restarting; please retry");
	}
	follow_stop(d);
	event_base_loopexit(d->base, NULL);
}

/* ------------------------------------------------------------------------------ main */

static void usage(void)
{
	puts("usage: ideaforge-agentd [--config FILE] [--KEY=VALUE ...]\n"
	     "       ideaforge-agentd --print-config [--config FILE] [--KEY=VALUE ...]\n"
	     "       ideaforge-agentd --version\n"
	     "\n"
	     "AI engine of IdeaForge: claims agent jobs from PostgreSQL, calls the LLM providers\n"
	     "and serves each job's event stream on agentd_listen (behind nginx). It reads the\n"
	     "same configuration as ideaforge-api: the file, IDEAFORGE_<KEY> variables, flags.\n"
	     "Signals: TERM/INT hand running jobs back to the queue and exit.");
}

/* The flags read before the configuration: --help and --version answer at once,
 * --print-config sets *print and is taken out of argv (*argc shrinks). Returns -1 to go on, or
 * the exit status. */
static int main_flags(int *argc, char **argv, bool *print)
{
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage();
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("ideaforge-agentd %s\n", PACKAGE_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--print-config") == 0) {
			*print = true;
			for (int j = i; j < *argc - 1; j++)
				argv[j] = argv[j + 1];
			(*argc)--;
			i--;
		}
	}
	return -1;
}

/* Loads and validates the configuration into *srv and *appv (owned by the caller), prints it
 * (print), sets the log level and readies the providers (ai_init) and the users' keys
 * (keys_init). Returns -1 to go on, or the exit status: the configuration is then freed,
 * unless it failed to load or validate. */
static int main_config(int argc, char **argv, bool print, struct srv_config **srv, void **appv)
{
	char err[512];
	if (app_config_load(argc, argv, srv, appv, err, sizeof(err)) < 0 ||
	    srv_config_validate(*srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "ideaforge-agentd: %s\n", err);
		return 2;
	}
	const struct app_config *cfg = *appv;
	if (!cfg->agentd_listen || !*cfg->agentd_listen) {
		fprintf(stderr, "ideaforge-agentd: invalid value '' for key 'agentd_listen'\n");
		app_config_free(*srv, *appv);
		return 2;
	}
	if (print) {
		app_config_dump(*srv, cfg);
		app_config_free(*srv, *appv);
		return 0;
	}
	log_set_level((enum log_level)(*srv)->log_level);
	if (ai_init(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ideaforge-agentd: %s\n", err);
		app_config_free(*srv, *appv);
		return 2;
	}
	keys_init(cfg); /* without a master key users' stored keys are not used (logged) */
	return -1;
}

/* The lease owner of this agentd: host:pid:start second. */
static void agentd_owner(struct agentd *d)
{
	char host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	snprintf(d->owner, sizeof(d->owner), "%s:%d:%lld", host, (int)getpid(),
		 (long long)(wall_us() / 1000000));
}

/* The database pool, the loop, libcurl, the response cache and the HTTP listener. Returns 0,
 * or -1 (logged for the listener only); what was made is freed by agentd_free. */
static int agentd_setup(struct agentd *d)
{
	const struct srv_config *srv = d->srv;
	const struct app_config *cfg = d->cfg;
	char err[512];
	struct db_pool_opts po = {
		.conninfo = srv->database_url,
		.size = 2,
		.overflow = 4,
		.timeout_ms = srv->db_pool_timeout_s * 1000,
		.recycle_s = srv->db_pool_recycle_s,
		.pre_ping = srv->db_pool_pre_ping,
		.statement_timeout_ms = srv->db_statement_timeout_ms,
		.lock_timeout_ms = srv->db_lock_timeout_ms,
		.application_name = "ideaforge-agentd",
	};
	d->pool = db_pool_new(&po);
	d->base = event_base_new();
	if (!d->pool || !d->base)
		return -1;
	d->ec = evcurl_new(d->base, agentd_on_transfer, d);
	/* the response cache: blocking Redis commands on the loop, with short timeouts (see
	 * "response cache" above); no Redis configured, or a TTL of 0: no cache */
	kv_shared_init(&d->kvs);
	if (srv->redis_url && *srv->redis_url && cfg->agent_cache_ttl_s > 0)
		d->kv = kv_new(srv->redis_url,
			       srv->redis_connect_timeout_ms < KV_CONNECT_TIMEOUT_MS
				       ? srv->redis_connect_timeout_ms
				       : KV_CONNECT_TIMEOUT_MS,
			       srv->redis_command_timeout_ms < KV_COMMAND_TIMEOUT_MS
				       ? srv->redis_command_timeout_ms
				       : KV_COMMAND_TIMEOUT_MS,
			       &d->kvs);
	d->http = evhttp_new(d->base);
	if (!d->ec || !d->http)
		return -1;
	evhttp_set_gencb(d->http, on_request, d);
	evhttp_set_timeout(d->http, 3600);
	evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	if (http_listen(d, err, sizeof(err)) < 0) {
		log_msg(LL_ERROR, NULL, "%s", err);
		return -1;
	}
	return 0;
}

/* The signal events (TERM, INT) and the timers: lease renewal and expiry, the LISTEN retry
 * (armed when needed) and the V0 follow-up tick. */
static void agentd_timers(struct agentd *d)
{
	d->sigs[0] = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sigs[1] = evsignal_new(d->base, SIGINT, on_signal, d);
	evsignal_add(d->sigs[0], NULL);
	evsignal_add(d->sigs[1], NULL);
	int64_t lease_ms = d->cfg->agent_job_lease_s * 1000;
	struct timeval renew = {lease_ms / 3 / 1000, (lease_ms / 3 % 1000) * 1000};
	struct timeval expire = {lease_ms / 2 / 1000, (lease_ms / 2 % 1000) * 1000};
	d->renew = event_new(d->base, -1, EV_PERSIST, on_renew, d);
	d->expire = event_new(d->base, -1, EV_PERSIST, on_expire, d);
	d->lretry = evtimer_new(d->base, on_listen_retry, d);
	evtimer_add(d->renew, &renew);
	evtimer_add(d->expire, &expire);
	/* V0 follow-up: twice per period, so a due check waits at most half a period more */
	int64_t tick_ms = d->cfg->design_poll_s * 1000 / 2;
	struct timeval tick = {tick_ms / 1000, (tick_ms % 1000) * 1000};
	d->follow_tick = event_new(d->base, -1, EV_PERSIST, on_follow_tick, d);
	evtimer_add(d->follow_tick, &tick);
}

/* Runs the loop until a signal stops it (on_signal): LISTEN, the first claim, READY=1. */
static void agentd_run(struct agentd *d)
{
	log_msg(LL_INFO, NULL, "ideaforge-agentd %s listening on %s as %s (max %lld jobs)",
		PACKAGE_VERSION, d->cfg->agentd_listen, d->owner,
		(long long)d->cfg->agent_max_concurrent);
	listen_connect(d); /* LISTEN, then the first claim */
	sysd_notify("READY=1");
	event_base_dispatch(d->base);
}

/* Frees d and all it holds; accepts NULL and a partial agentd_setup. The configuration stays
 * the caller's. */
static void agentd_free(struct agentd *d)
{
	if (!d)
		return;
	if (d->http)
		evhttp_free(d->http);
	for (int i = 0; i < 2; i++)
		if (d->sigs[i])
			event_free(d->sigs[i]);
	if (d->renew)
		event_free(d->renew);
	if (d->expire)
		event_free(d->expire);
	follow_stop(d);
	if (d->follow_tick)
		event_free(d->follow_tick);
	if (d->lretry)
		event_free(d->lretry);
	if (d->lev)
		event_free(d->lev);
	PQfinish(d->lconn);
	evcurl_free(d->ec);
	kv_free(d->kv);
	db_pool_free(d->pool);
	if (d->base)
		event_base_free(d->base);
	buf_free(&d->out);
	free(d);
}

int main(int argc, char **argv)
{
	bool print = false;
	int rc = main_flags(&argc, argv, &print);
	if (rc >= 0)
		return rc;
	struct srv_config *srv = NULL;
	void *appv = NULL;
	rc = main_config(argc, argv, print, &srv, &appv);
	if (rc >= 0)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "ideaforge-agentd: curl_global_init failed\n");
		return 1;
	}
	rc = 1;
	struct agentd *d = calloc(1, sizeof(*d));
	if (!d)
		goto out;
	d->srv = srv;
	d->cfg = appv;
	d->started_us = now_us();
	buf_init(&d->out, NULL);
	agentd_owner(d);
	if (agentd_setup(d) < 0)
		goto out;
	agentd_timers(d);
	agentd_run(d);
	rc = 0;
out:
	agentd_free(d);
	curl_global_cleanup();
	app_config_free(srv, appv);
	log_msg(rc ? LL_ERROR : LL_INFO, NULL, "ideaforge-agentd exiting with status %d", rc);
	return rc;
}
