/* llm.c - LLM provider clients (OpenAI Chat Completions, Anthropic Messages, Google Gemini
 * generateContent) over libcurl, streaming through lib/sse.
 *
 * Wire formats, as documented by the providers:
 *   OpenAI: stream chunks {"choices":[{"delta":{"content":..},"finish_reason":..}]}, then a
 *     chunk with "usage" and empty "choices" (stream_options.include_usage), then
 *     "data: [DONE]".
 *   Anthropic: events message_start (message.usage.input_tokens), content_block_start,
 *     content_block_delta (delta.type "text_delta", delta.text), content_block_stop, ping,
 *     message_delta (delta.stop_reason, usage.output_tokens), message_stop; "error" events
 *     carry {"type":"error","error":{"type":..}}.
 *   Gemini: with alt=sse, each event is a whole GenerateContentResponse: candidates[0].content
 *     .parts[*].text, candidates[0].finishReason on the last one, usageMetadata.
 * Error bodies: OpenAI {"error":{"type","code"}}, Anthropic {"type":"error","error":{"type"}},
 * Gemini {"error":{"code","status","details":[{"reason"}]}}.
 */
#include "llm.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "buf.h"
#include "jx.h"
#include "log.h"
#include "sse.h"

#define LLM_JSON_DEPTH 64               /* nesting accepted in provider JSON */
#define LLM_FINISH_MAX 32               /* bytes kept of a finish reason */
#define LLM_SPEEDCHECK_S (86400L)       /* low-speed window: long, only to get curl's 1 s tick */
#define LLM_RETRY_AFTER_MAX_MS 86400000 /* Retry-After values beyond a day are clamped */

enum llm_kind { LLM_KIND_CHAT, LLM_KIND_VERIFY };

/* Why a callback stopped the transfer; decides the status before curl's code does. */
enum llm_abort {
	LLM_AB_NONE,     /* not stopped by us */
	LLM_AB_CANCEL,   /* on_token returned nonzero */
	LLM_AB_TIMEOUT,  /* first-token or idle timeout */
	LLM_AB_PROTOCOL, /* unparseable event, event or body over its cap */
	LLM_AB_ERROR,    /* the stream carried an error event: status in stream_err */
};

struct llm_call {
	CURL *easy;                     /* the transfer */
	struct curl_slist *headers;     /* request headers; one holds the key (wiped on free) */
	char *url;                      /* request URL (no secret in it) */
	char *body;                     /* request JSON, NULL for a GET */
	enum llm_provider provider;     /* wire protocol */
	enum llm_kind kind;             /* chat or verify */
	bool stream;                    /* SSE answer expected */
	llm_token_fn on_token;          /* text callback, may be NULL */
	llm_done_fn on_done;            /* outcome callback, may be NULL */
	void *u;                        /* argument of both */
	int64_t first_token_timeout_ms; /* 0 = none */
	int64_t idle_timeout_ms;        /* 0 = none */
	struct sse_parser *sse;         /* stream parser (stream only) */
	struct buf in;                  /* non-streamed body, or an error body */
	struct buf text;                /* the answer so far */
	char finish[LLM_FINISH_MAX];    /* finish reason, "" when none */
	enum llm_abort abort;           /* why a callback stopped the transfer */
	enum llm_status stream_err;     /* status of an error event (abort == LLM_AB_ERROR) */
	bool ended;                     /* the stream's end marker arrived */
	bool done;                      /* on_done was called */
	int64_t start_us;               /* monotonic start (first llm_call_easy), 0 before */
	int64_t first_byte_us;          /* monotonic time of the first body byte, -1 before */
	int64_t last_byte_us;           /* monotonic time of the latest body byte */
	struct llm_result res;          /* the outcome being built */
};

/* --- names ------------------------------------------------------------------------------- */

static const char *const llm_provider_names[LLM__MAX] = {
	[LLM_OPENAI] = "openai",
	[LLM_ANTHROPIC] = "anthropic",
	[LLM_GEMINI] = "gemini",
};

static const struct {
	const char *name;    /* accepted spelling */
	enum llm_provider p; /* provider */
} llm_provider_aliases[] = {
	{"openai", LLM_OPENAI}, {"anthropic", LLM_ANTHROPIC}, {"claude", LLM_ANTHROPIC},
	{"gemini", LLM_GEMINI}, {"google", LLM_GEMINI},
};

static const char *const llm_status_names[LLM__SMAX] = {
	[LLM_OK] = "ok",
	[LLM_E_AUTH] = "auth",
	[LLM_E_QUOTA] = "quota",
	[LLM_E_BADREQ] = "badreq",
	[LLM_E_SERVER] = "server",
	[LLM_E_UNREACHABLE] = "unreachable",
	[LLM_E_TIMEOUT] = "timeout",
	[LLM_E_PROTOCOL] = "protocol",
	[LLM_E_CANCELLED] = "cancelled",
};

/* result.detail: fixed texts, safe to show to a user. */
static const char *const llm_status_details[LLM__SMAX] = {
	[LLM_OK] = "the provider answered",
	[LLM_E_AUTH] = "the provider rejected the API key or its permissions",
	[LLM_E_QUOTA] = "the provider's rate limit or quota was reached",
	[LLM_E_BADREQ] = "the provider refused the request (model, parameters or URL)",
	[LLM_E_SERVER] = "the provider failed or is overloaded",
	[LLM_E_UNREACHABLE] = "the provider could not be reached or the connection broke",
	[LLM_E_TIMEOUT] = "the provider did not answer in time",
	[LLM_E_PROTOCOL] = "the provider's answer could not be understood",
	[LLM_E_CANCELLED] = "the call was cancelled",
};

const char *llm_provider_name(enum llm_provider p)
{
	return (unsigned)p < LLM__MAX ? llm_provider_names[p] : "?";
}

enum llm_provider llm_provider_parse(const char *s)
{
	enum llm_provider p = LLM__MAX;
	if (!s)
		goto out;
	for (size_t i = 0; i < sizeof(llm_provider_aliases) / sizeof(llm_provider_aliases[0]); i++)
		if (strcasecmp(s, llm_provider_aliases[i].name) == 0) {
			p = llm_provider_aliases[i].p;
			break;
		}
out:
	return p;
}

const char *llm_status_str(enum llm_status s)
{
	return (unsigned)s < LLM__SMAX ? llm_status_names[s] : "?";
}

/* --- JSON access ------------------------------------------------------------------------- */

/* Member key of o as a string with its length; NULL when absent or not a string. */
static const char *llm_jstr(struct json_object *o, const char *key, size_t *len)
{
	struct json_object *v = jx_get(o, key);
	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/* Element i of the array member key of o, or NULL. */
static struct json_object *llm_jidx(struct json_object *o, const char *key, size_t i)
{
	struct json_object *a = jx_get(o, key);
	if (!a || !json_object_is_type(a, json_type_array) || i >= json_object_array_length(a))
		return NULL;
	return json_object_array_get_idx(a, i);
}

/* Sets *dst from the integer member key of o when present and not negative. */
static void llm_jcount(int64_t *dst, struct json_object *o, const char *key)
{
	int64_t v = jx_get_int(o, key, -1);
	if (v >= 0)
		*dst = v;
}

/* --- classification ---------------------------------------------------------------------- */

/* Error names of the three providers (error.type, error.code, error.status, details[].reason),
 * strongest first: OpenAI reports a bad key as type invalid_request_error + code
 * invalid_api_key, Gemini as INVALID_ARGUMENT + reason API_KEY_INVALID. */
static const struct {
	const char *name;   /* as sent by the provider */
	enum llm_status st; /* our status */
} llm_error_names[] = {
	{"authentication_error", LLM_E_AUTH},    /* Anthropic */
	{"permission_error", LLM_E_AUTH},        /* Anthropic */
	{"invalid_api_key", LLM_E_AUTH},         /* OpenAI code */
	{"API_KEY_INVALID", LLM_E_AUTH},         /* Gemini ErrorInfo reason */
	{"PERMISSION_DENIED", LLM_E_AUTH},       /* Gemini */
	{"UNAUTHENTICATED", LLM_E_AUTH},         /* Gemini */
	{"insufficient_quota", LLM_E_QUOTA},     /* OpenAI */
	{"rate_limit_exceeded", LLM_E_QUOTA},    /* OpenAI code */
	{"rate_limit_error", LLM_E_QUOTA},       /* Anthropic */
	{"RESOURCE_EXHAUSTED", LLM_E_QUOTA},     /* Gemini */
	{"overloaded_error", LLM_E_SERVER},      /* Anthropic (HTTP 529) */
	{"api_error", LLM_E_SERVER},             /* Anthropic */
	{"server_error", LLM_E_SERVER},          /* OpenAI */
	{"UNAVAILABLE", LLM_E_SERVER},           /* Gemini */
	{"INTERNAL", LLM_E_SERVER},              /* Gemini */
	{"invalid_request_error", LLM_E_BADREQ}, /* OpenAI, Anthropic */
	{"not_found_error", LLM_E_BADREQ},       /* Anthropic */
	{"request_too_large", LLM_E_BADREQ},     /* Anthropic */
	{"INVALID_ARGUMENT", LLM_E_BADREQ},      /* Gemini */
	{"NOT_FOUND", LLM_E_BADREQ},             /* Gemini */
};

/* True when err's type, code, status or one of its details' reasons is name. */
static bool llm_error_is(struct json_object *err, const char *name)
{
	static const char *const fields[] = {"type", "code", "status"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = jx_get_str(err, fields[i]);
		if (v && strcmp(v, name) == 0)
			return true;
	}
	struct json_object *d;
	for (size_t i = 0; (d = llm_jidx(err, "details", i)) != NULL; i++) {
		const char *v = jx_get_str(d, "reason");
		if (v && strcmp(v, name) == 0)
			return true;
	}
	return false;
}

/* Status named by an error body or event (root), LLM__SMAX when it names none. The message
 * is read only for Gemini's bad-key INVALID_ARGUMENT, and never kept. */
static enum llm_status llm_error_status(struct json_object *root)
{
	struct json_object *err = jx_get(root, "error");
	if (!err || !json_object_is_type(err, json_type_object))
		return LLM__SMAX;
	for (size_t i = 0; i < sizeof(llm_error_names) / sizeof(llm_error_names[0]); i++) {
		if (!llm_error_is(err, llm_error_names[i].name))
			continue;
		const char *msg = jx_get_str(err, "message");
		if (llm_error_names[i].st == LLM_E_BADREQ && msg && strcasestr(msg, "api key"))
			return LLM_E_AUTH;
		return llm_error_names[i].st;
	}
	return LLM__SMAX;
}

/* Status of a non-2xx HTTP answer from its code alone. */
static enum llm_status llm_http_status(int hs)
{
	if (hs == 401 || hs == 403)
		return LLM_E_AUTH;
	if (hs == 429)
		return LLM_E_QUOTA;
	if (hs == 408)
		return LLM_E_TIMEOUT;
	if (hs >= 500) /* 529: Anthropic overloaded */
		return LLM_E_SERVER;
	if (hs >= 400)
		return LLM_E_BADREQ;
	return LLM_E_PROTOCOL; /* 1xx, 3xx: redirects are not followed */
}

/* A non-2xx answer: the code decides, except that the body may refine a 4xx "bad request"
 * (Gemini answers a bad key with 400). */
static enum llm_status llm_classify_http(struct llm_call *c)
{
	enum llm_status s = llm_http_status(c->res.http_status);
	if (s != LLM_E_BADREQ || c->in.len == 0)
		return s;
	struct json_object *o = jx_parse(c->in.p, c->in.len, LLM_JSON_DEPTH);
	enum llm_status b = llm_error_status(o);
	json_object_put(o);
	return b == LLM_E_AUTH || b == LLM_E_QUOTA ? b : s;
}

static const struct {
	CURLcode cc;        /* transfer result */
	enum llm_status st; /* our status */
} llm_curl_codes[] = {
	{CURLE_OPERATION_TIMEDOUT, LLM_E_TIMEOUT},
	{CURLE_COULDNT_RESOLVE_PROXY, LLM_E_UNREACHABLE},
	{CURLE_COULDNT_RESOLVE_HOST, LLM_E_UNREACHABLE},
	{CURLE_COULDNT_CONNECT, LLM_E_UNREACHABLE},
	{CURLE_SEND_ERROR, LLM_E_UNREACHABLE},
	{CURLE_RECV_ERROR, LLM_E_UNREACHABLE},
	{CURLE_GOT_NOTHING, LLM_E_UNREACHABLE},
	{CURLE_PARTIAL_FILE, LLM_E_UNREACHABLE},
	{CURLE_SSL_CONNECT_ERROR, LLM_E_UNREACHABLE},
	{CURLE_PEER_FAILED_VERIFICATION, LLM_E_UNREACHABLE},
	{CURLE_SSL_CACERT_BADFILE, LLM_E_UNREACHABLE},
	{CURLE_PROXY, LLM_E_UNREACHABLE},
	{CURLE_URL_MALFORMAT, LLM_E_BADREQ},
	{CURLE_UNSUPPORTED_PROTOCOL, LLM_E_BADREQ},
	{CURLE_ABORTED_BY_CALLBACK, LLM_E_CANCELLED},
};

static enum llm_status llm_classify_curl(CURLcode cc)
{
	for (size_t i = 0; i < sizeof(llm_curl_codes) / sizeof(llm_curl_codes[0]); i++)
		if (llm_curl_codes[i].cc == cc)
			return llm_curl_codes[i].st;
	return LLM_E_PROTOCOL;
}

/* --- answers ----------------------------------------------------------------------------- */

/* Appends a piece of answer text and hands it to on_token; -1 stops the transfer. */
static int llm_token(struct llm_call *c, const char *s, size_t n)
{
	if (n == 0)
		return 0;
	if (c->text.len + n > LLM_BODY_MAX) {
		c->abort = LLM_AB_PROTOCOL;
		return -1;
	}
	buf_append(&c->text, s, n);
	if (c->res.first_token_us < 0)
		c->res.first_token_us = now_us() - c->start_us;
	c->res.got_tokens = true;
	if (c->on_token && c->on_token(c->u, s, n) != 0) {
		c->abort = LLM_AB_CANCEL;
		return -1;
	}
	return 0;
}

/* Text member key of o, if any, as a token. */
static int llm_token_member(struct llm_call *c, struct json_object *o, const char *key)
{
	size_t n = 0;
	const char *s = llm_jstr(o, key, &n);
	return s ? llm_token(c, s, n) : 0;
}

static void llm_set_finish(struct llm_call *c, const char *reason)
{
	if (reason)
		snprintf(c->finish, sizeof(c->finish), "%s", reason);
}

/* An error inside a 200 stream: classify it (unknown names count as a server failure). */
static int llm_stream_error(struct llm_call *c, struct json_object *o)
{
	enum llm_status s = llm_error_status(o);
	c->stream_err = s == LLM__SMAX ? LLM_E_SERVER : s;
	c->abort = LLM_AB_ERROR;
	return -1;
}

/* OpenAI: one chunk (delta in a stream, message otherwise). */
static int llm_openai_choice(struct llm_call *c, struct json_object *o, const char *member)
{
	struct json_object *ch = llm_jidx(o, "choices", 0);
	struct json_object *usage = jx_get(o, "usage");
	llm_set_finish(c, jx_get_str(ch, "finish_reason"));
	llm_jcount(&c->res.input_tokens, usage, "prompt_tokens");
	llm_jcount(&c->res.output_tokens, usage, "completion_tokens");
	return llm_token_member(c, jx_get(ch, member), "content");
}

static int llm_openai_event(struct llm_call *c, struct json_object *o)
{
	if (jx_get(o, "error"))
		return llm_stream_error(c, o);
	return llm_openai_choice(c, o, "delta");
}

static int llm_openai_body(struct llm_call *c, struct json_object *o)
{
	if (!jx_get(llm_jidx(o, "choices", 0), "message"))
		return -1;
	return llm_openai_choice(c, o, "message");
}

static int llm_anthropic_event(struct llm_call *c, struct json_object *o)
{
	const char *type = jx_get_str(o, "type");
	if (!type)
		return 0;
	if (strcmp(type, "content_block_delta") == 0) {
		struct json_object *d = jx_get(o, "delta");
		const char *dt = jx_get_str(d, "type");
		return dt && strcmp(dt, "text_delta") == 0 ? llm_token_member(c, d, "text") : 0;
	}
	if (strcmp(type, "message_start") == 0) {
		struct json_object *usage = jx_get(jx_get(o, "message"), "usage");
		llm_jcount(&c->res.input_tokens, usage, "input_tokens");
		llm_jcount(&c->res.output_tokens, usage, "output_tokens");
	} else if (strcmp(type, "message_delta") == 0) {
		llm_set_finish(c, jx_get_str(jx_get(o, "delta"), "stop_reason"));
		llm_jcount(&c->res.output_tokens, jx_get(o, "usage"), "output_tokens");
	} else if (strcmp(type, "message_stop") == 0) {
		c->ended = true;
	} else if (strcmp(type, "error") == 0) {
		return llm_stream_error(c, o);
	}
	return 0;
}

static int llm_anthropic_body(struct llm_call *c, struct json_object *o)
{
	struct json_object *usage = jx_get(o, "usage");
	struct json_object *blk;
	if (!jx_get(o, "content"))
		return -1;
	llm_set_finish(c, jx_get_str(o, "stop_reason"));
	llm_jcount(&c->res.input_tokens, usage, "input_tokens");
	llm_jcount(&c->res.output_tokens, usage, "output_tokens");
	for (size_t i = 0; (blk = llm_jidx(o, "content", i)) != NULL; i++) {
		const char *t = jx_get_str(blk, "type");
		if (t && strcmp(t, "text") == 0 && llm_token_member(c, blk, "text") != 0)
			return -1;
	}
	return 0;
}

/* Gemini: a whole GenerateContentResponse, streamed or not. Thought summaries are skipped;
 * a finishReason (or a blocked prompt) ends the stream. */
static int llm_gemini_response(struct llm_call *c, struct json_object *o)
{
	struct json_object *cand = llm_jidx(o, "candidates", 0);
	struct json_object *usage = jx_get(o, "usageMetadata");
	struct json_object *part;
	const char *fin = jx_get_str(cand, "finishReason");
	const char *blocked = jx_get_str(jx_get(o, "promptFeedback"), "blockReason");
	llm_jcount(&c->res.input_tokens, usage, "promptTokenCount");
	llm_jcount(&c->res.output_tokens, usage, "candidatesTokenCount");
	for (size_t i = 0; (part = llm_jidx(jx_get(cand, "content"), "parts", i)) != NULL; i++)
		if (!jx_get_bool(part, "thought", false) && llm_token_member(c, part, "text") != 0)
			return -1;
	if (fin || blocked) {
		llm_set_finish(c, fin ? fin : blocked);
		c->ended = true;
	}
	return 0;
}

static int llm_gemini_event(struct llm_call *c, struct json_object *o)
{
	if (jx_get(o, "error"))
		return llm_stream_error(c, o);
	return llm_gemini_response(c, o);
}

static int llm_gemini_body(struct llm_call *c, struct json_object *o)
{
	if (!jx_get(o, "candidates") && !jx_get(o, "promptFeedback"))
		return -1;
	return llm_gemini_response(c, o);
}

/* --- requests ---------------------------------------------------------------------------- */

static void llm_jadd_str(struct json_object *o, const char *key, const char *s)
{
	json_object_object_add(o, key, json_object_new_string(s));
}

/* {"<key>": "<text>"} */
static struct json_object *llm_jpair(const char *key, const char *text)
{
	struct json_object *o = json_object_new_object();
	llm_jadd_str(o, key, text);
	return o;
}

/* Temperature as a short decimal (json-c's default prints 17 digits). */
static void llm_jadd_temp(struct json_object *o, const char *key, double t)
{
	char s[32];
	snprintf(s, sizeof(s), "%.3g", t);
	json_object_object_add(o, key, json_object_new_double_s(t, s));
}

/* [{"role", "content"}...]: OpenAI and Anthropic share the shape. */
static struct json_object *llm_chat_messages(const struct llm_request *rq, bool with_system)
{
	struct json_object *a = json_object_new_array();
	if (with_system && rq->system) {
		struct json_object *m = llm_jpair("role", "system");
		llm_jadd_str(m, "content", rq->system);
		json_object_array_add(a, m);
	}
	for (size_t i = 0; i < rq->nmsgs; i++) {
		struct json_object *m = llm_jpair("role", rq->msgs[i].role);
		llm_jadd_str(m, "content", rq->msgs[i].content);
		json_object_array_add(a, m);
	}
	return a;
}

static struct json_object *llm_openai_request(const struct llm_request *rq)
{
	struct json_object *o = llm_jpair("model", rq->model);
	json_object_object_add(o, "messages", llm_chat_messages(rq, true));
	if (rq->max_tokens > 0)
		json_object_object_add(o, "max_tokens", json_object_new_int(rq->max_tokens));
	if (rq->temperature >= 0)
		llm_jadd_temp(o, "temperature", rq->temperature);
	json_object_object_add(o, "stream", json_object_new_boolean(rq->stream));
	if (rq->stream) { /* the final chunk then carries usage */
		struct json_object *so = json_object_new_object();
		json_object_object_add(so, "include_usage", json_object_new_boolean(1));
		json_object_object_add(o, "stream_options", so);
	}
	return o;
}

static struct json_object *llm_anthropic_request(const struct llm_request *rq)
{
	struct json_object *o = llm_jpair("model", rq->model);
	int max = rq->max_tokens > 0 ? rq->max_tokens : LLM_ANTHROPIC_MAX_TOKENS;
	json_object_object_add(o, "max_tokens", json_object_new_int(max));
	if (rq->system)
		llm_jadd_str(o, "system", rq->system);
	json_object_object_add(o, "messages", llm_chat_messages(rq, false));
	if (rq->temperature >= 0)
		llm_jadd_temp(o, "temperature", rq->temperature);
	json_object_object_add(o, "stream", json_object_new_boolean(rq->stream));
	return o;
}

/* {"parts": [{"text": text}]}, optionally with a role. */
static struct json_object *llm_gemini_content(const char *role, const char *text)
{
	struct json_object *o = role ? llm_jpair("role", role) : json_object_new_object();
	struct json_object *parts = json_object_new_array();
	json_object_array_add(parts, llm_jpair("text", text));
	json_object_object_add(o, "parts", parts);
	return o;
}

static struct json_object *llm_gemini_request(const struct llm_request *rq)
{
	struct json_object *o = json_object_new_object();
	struct json_object *contents = json_object_new_array();
	for (size_t i = 0; i < rq->nmsgs; i++) {
		bool user = strcmp(rq->msgs[i].role, "user") == 0;
		json_object_array_add(
			contents, llm_gemini_content(user ? "user" : "model", rq->msgs[i].content));
	}
	json_object_object_add(o, "contents", contents);
	if (rq->system)
		json_object_object_add(o, "systemInstruction",
				       llm_gemini_content(NULL, rq->system));
	if (rq->max_tokens > 0 || rq->temperature >= 0) {
		struct json_object *gc = json_object_new_object();
		if (rq->max_tokens > 0)
			json_object_object_add(gc, "maxOutputTokens",
					       json_object_new_int(rq->max_tokens));
		if (rq->temperature >= 0)
			llm_jadd_temp(gc, "temperature", rq->temperature);
		json_object_object_add(o, "generationConfig", gc);
	}
	return o;
}

/* --- protocols --------------------------------------------------------------------------- */

struct llm_proto {
	const char *key_header;    /* header prefix the key follows */
	const char *extra_header;  /* one more fixed header, or NULL */
	const char *chat_path;     /* appended to the base URL (then model and suffix for Gemini) */
	bool model_in_path;        /* Gemini: {chat_path}{model}{suffix} */
	const char *suffix;        /* non-streamed */
	const char *stream_suffix; /* streamed */
	const char *verify_path;   /* GET that lists models */
	struct json_object *(*request)(const struct llm_request *rq); /* request body */
	int (*event)(struct llm_call *c, struct json_object *o);      /* one SSE event */
	int (*body)(struct llm_call *c, struct json_object *o);       /* whole body */
};

/* clang-format off */
static const struct llm_proto llm_protos[LLM__MAX] = {
	[LLM_OPENAI] = {
		.key_header = "Authorization: Bearer ",
		.chat_path = "/chat/completions",
		.suffix = "",
		.stream_suffix = "",
		.verify_path = "/models",
		.request = llm_openai_request,
		.event = llm_openai_event,
		.body = llm_openai_body,
	},
	[LLM_ANTHROPIC] = {
		.key_header = "x-api-key: ",
		.extra_header = "anthropic-version: 2023-06-01",
		.chat_path = "/v1/messages",
		.suffix = "",
		.stream_suffix = "",
		.verify_path = "/v1/models",
		.request = llm_anthropic_request,
		.event = llm_anthropic_event,
		.body = llm_anthropic_body,
	},
	[LLM_GEMINI] = {
		.key_header = "x-goog-api-key: ",
		.chat_path = "/v1beta/models/",
		.model_in_path = true,
		.suffix = ":generateContent",
		.stream_suffix = ":streamGenerateContent?alt=sse",
		.verify_path = "/v1beta/models",
		.request = llm_gemini_request,
		.event = llm_gemini_event,
		.body = llm_gemini_body,
	},
};
/* clang-format on */

/* --- curl callbacks ---------------------------------------------------------------------- */

/* One SSE event of a streamed answer. */
static int llm_on_event(void *u, const char *event, const char *data, size_t len, const char *id)
{
	struct llm_call *c = u;
	struct json_object *o = NULL;
	int rc = -1;
	(void)event; /* Anthropic repeats the event name as "type"; the others send none */
	(void)id;
	if (c->provider == LLM_OPENAI && strcmp(data, "[DONE]") == 0) {
		c->ended = true;
		rc = 0;
		goto out;
	}
	o = jx_parse(data, len, LLM_JSON_DEPTH);
	if (!o) {
		c->abort = LLM_AB_PROTOCOL;
		goto out;
	}
	rc = llm_protos[c->provider].event(c, o);
out:
	json_object_put(o);
	return rc;
}

static bool llm_http_ok(int hs)
{
	return hs >= 200 && hs <= 299;
}

/* Keeps n more bytes in c->in, up to max; -1 (and a protocol abort) beyond. */
static int llm_keep(struct llm_call *c, const char *p, size_t n, size_t max)
{
	if (c->in.len + n > max) {
		c->abort = LLM_AB_PROTOCOL;
		return -1;
	}
	buf_append(&c->in, p, n);
	return 0;
}

/* Body bytes: error bodies and whole answers are kept (capped), streams are parsed. */
static int llm_route(struct llm_call *c, const char *p, size_t n)
{
	if (!llm_http_ok(c->res.http_status))
		return llm_keep(c, p, n, LLM_ERROR_BODY_MAX);
	if (c->kind == LLM_KIND_VERIFY)
		return 0;
	if (!c->stream)
		return llm_keep(c, p, n, LLM_BODY_MAX);
	if (sse_parser_feed(c->sse, p, n) != 0) {
		if (c->abort == LLM_AB_NONE) /* the parser's cap */
			c->abort = LLM_AB_PROTOCOL;
		return -1;
	}
	return 0;
}

static size_t llm_on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct llm_call *c = ud;
	size_t n = size * nmemb;
	int64_t t = now_us();
	if (c->first_byte_us < 0) {
		long hs = 0;
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &hs);
		c->res.http_status = (int)hs;
		c->first_byte_us = t;
	}
	c->last_byte_us = t;
	return llm_route(c, p, n) == 0 ? n : 0;
}

/* Value of a Retry-After style header in ms: delta-seconds, or an HTTP-date (RFC 9110
 * 10.2.3) when unit_ms is 1000; -1 when unparseable. */
static int64_t llm_retry_value(const char *v, int64_t unit_ms)
{
	char *end = NULL;
	long long x = strtoll(v, &end, 10);
	if (end != v && *end == '\0' && x >= 0)
		return x > LLM_RETRY_AFTER_MAX_MS / unit_ms ? LLM_RETRY_AFTER_MAX_MS : x * unit_ms;
	if (unit_ms != 1000)
		return -1;
	time_t when = curl_getdate(v, NULL);
	if (when == (time_t)-1)
		return -1;
	int64_t ms = ((int64_t)when - (int64_t)time(NULL)) * 1000;
	return ms < 0 ? 0 : ms > LLM_RETRY_AFTER_MAX_MS ? LLM_RETRY_AFTER_MAX_MS : ms;
}

static const struct {
	const char *name; /* header name with its colon */
	int64_t unit_ms;  /* ms per unit of its value */
} llm_retry_headers[] = {
	{"retry-after:", 1000}, /* RFC 9110 10.2.3 */
	{"retry-after-ms:", 1}, /* OpenAI, Anthropic SDK convention */
};

/* Copies the value of header line p (n bytes, name of hl bytes) into v without the
 * surrounding blanks and CRLF; false when it does not fit. */
static bool llm_header_value(const char *p, size_t n, size_t hl, char *v, size_t vsize)
{
	size_t s = hl, e = n;
	while (s < e && (p[s] == ' ' || p[s] == '\t'))
		s++;
	while (e > s && (p[e - 1] == '\r' || p[e - 1] == '\n' || p[e - 1] == ' '))
		e--;
	if (e - s >= vsize)
		return false;
	memcpy(v, p + s, e - s);
	v[e - s] = '\0';
	return true;
}

/* Retry-After and retry-after-ms: the longer wait wins. A status line starts a new response
 * and forgets earlier values. */
static size_t llm_on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct llm_call *c = ud;
	size_t n = size * nmemb;
	char v[64];
	if (n >= 5 && strncasecmp(p, "HTTP/", 5) == 0)
		c->res.retry_after_ms = -1;
	for (size_t i = 0; i < sizeof(llm_retry_headers) / sizeof(llm_retry_headers[0]); i++) {
		size_t hl = strlen(llm_retry_headers[i].name);
		if (n <= hl || strncasecmp(p, llm_retry_headers[i].name, hl) != 0 ||
		    !llm_header_value(p, n, hl, v, sizeof(v)))
			continue;
		int64_t ms = llm_retry_value(v, llm_retry_headers[i].unit_ms);
		if (ms > c->res.retry_after_ms)
			c->res.retry_after_ms = ms;
	}
	return n;
}

/* Still waiting for the first token (streamed 2xx) or the first byte (anything else)? */
static bool llm_first_overdue(const struct llm_call *c, int64_t t)
{
	bool waiting;
	if (c->first_token_timeout_ms <= 0)
		return false;
	if (c->stream && c->kind == LLM_KIND_CHAT &&
	    (c->first_byte_us < 0 || llm_http_ok(c->res.http_status)))
		waiting = !c->res.got_tokens;
	else
		waiting = c->first_byte_us < 0;
	return waiting && t - c->start_us >= c->first_token_timeout_ms * 1000;
}

static bool llm_idle_overdue(const struct llm_call *c, int64_t t)
{
	return c->stream && c->idle_timeout_ms > 0 && c->first_byte_us >= 0 &&
	       t - c->last_byte_us >= c->idle_timeout_ms * 1000;
}

static int llm_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			   curl_off_t ulnow)
{
	struct llm_call *c = ud;
	int64_t t = now_us();
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (!llm_first_overdue(c, t) && !llm_idle_overdue(c, t))
		return 0;
	c->abort = LLM_AB_TIMEOUT;
	return 1;
}

/* --- construction ------------------------------------------------------------------------ */

/* Printable ASCII without CR/LF: fit for a header value. */
static bool llm_header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool llm_model_safe(const char *m)
{
	size_t n = strlen(m);
	return n > 0 && strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				  "0123456789._-") == n;
}

static bool llm_request_valid(const struct llm_request *rq)
{
	if (!rq || (unsigned)rq->provider >= LLM__MAX || !rq->model || !*rq->model || !rq->msgs ||
	    rq->nmsgs == 0 || isinf(rq->temperature)) /* NaN counts as "default" */
		return false;
	if (rq->provider == LLM_GEMINI && !llm_model_safe(rq->model))
		return false;
	for (size_t i = 0; i < rq->nmsgs; i++) {
		const char *r = rq->msgs[i].role;
		if (!r || !rq->msgs[i].content || (strcmp(r, "user") && strcmp(r, "assistant")))
			return false;
	}
	return true;
}

static int llm_add_header(struct curl_slist **h, const char *line)
{
	struct curl_slist *t = curl_slist_append(*h, line);
	if (!t)
		return -1;
	*h = t;
	return 0;
}

/* Adds "<prefix><key>", wiping the temporary copy. */
static int llm_add_key_header(struct curl_slist **h, const char *prefix, const char *key)
{
	size_t n = strlen(prefix) + strlen(key) + 1;
	char *s = malloc(n);
	int rc = -1;
	if (!s)
		goto out;
	snprintf(s, n, "%s%s", prefix, key);
	rc = llm_add_header(h, s);
	explicit_bzero(s, n);
	free(s);
out:
	return rc;
}

static int llm_headers(struct llm_call *c, const char *api_key)
{
	const struct llm_proto *pr = &llm_protos[c->provider];
	int rc = 0;
	rc |= llm_add_header(&c->headers,
			     c->stream ? "Accept: text/event-stream" : "Accept: application/json");
	rc |= llm_add_header(&c->headers, "Expect:"); /* no 100-continue round trip */
	if (c->body)
		rc |= llm_add_header(&c->headers, "Content-Type: application/json");
	if (pr->extra_header)
		rc |= llm_add_header(&c->headers, pr->extra_header);
	if (api_key && *api_key)
		rc |= llm_add_key_header(&c->headers, pr->key_header, api_key);
	return rc ? -1 : 0;
}

/* base (without trailing '/') + the provider's path; owned by c. */
static int llm_url(struct llm_call *c, const char *base, const char *model)
{
	const struct llm_proto *pr = &llm_protos[c->provider];
	size_t blen = strlen(base);
	struct buf b;
	buf_init(&b, NULL);
	while (blen && base[blen - 1] == '/')
		blen--;
	buf_append(&b, base, blen);
	if (c->kind == LLM_KIND_VERIFY) {
		buf_puts(&b, pr->verify_path);
	} else {
		buf_puts(&b, pr->chat_path);
		if (pr->model_in_path)
			buf_puts(&b, model);
		buf_puts(&b, c->stream ? pr->stream_suffix : pr->suffix);
	}
	c->url = b.p;
	return 0;
}

/* Shared by llm_call_new and llm_verify_new: the call without easy handle. */
static struct llm_call *llm_alloc(enum llm_provider p, enum llm_kind kind, llm_token_fn on_token,
				  llm_done_fn on_done, void *u)
{
	struct llm_call *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->provider = p;
	c->kind = kind;
	c->on_token = on_token;
	c->on_done = on_done;
	c->u = u;
	c->first_byte_us = -1;
	c->stream_err = LLM_OK;
	buf_init(&c->in, NULL);
	buf_init(&c->text, NULL);
	c->res.retry_after_ms = -1;
	c->res.input_tokens = c->res.output_tokens = -1;
	c->res.first_token_us = -1;
	return c;
}

static int llm_setopt_timeouts(struct llm_call *c, int64_t connect_ms, int64_t total_ms)
{
	int bad = 0;
	if (connect_ms > 0)
		bad |= curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms) != 0;
	if (total_ms > 0)
		bad |= curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)total_ms) != 0;
	if (c->first_token_timeout_ms > 0 || c->idle_timeout_ms > 0) {
		/* a low-speed limit makes curl re-check the transfer every second, even in a
		 * multi driven by socket events: that tick runs llm_on_progress */
		bad |= curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_LIMIT, 1L) != 0;
		bad |= curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_TIME, LLM_SPEEDCHECK_S) != 0;
	}
	return bad ? -1 : 0;
}

/* A configured easy handle for c (URL, headers, body, callbacks). */
static int llm_easy(struct llm_call *c, int64_t connect_ms, int64_t total_ms)
{
	CURL *e = curl_easy_init();
	int bad = 0;
	if (!e)
		return -1;
	c->easy = e;
	bad |= curl_easy_setopt(e, CURLOPT_URL, c->url) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != 0;
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)c) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, llm_on_write) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)c) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, llm_on_header) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)c) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, llm_on_progress) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)c) != 0;
	bad |= curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L) != 0;
	if (c->body) {
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body) != 0;
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
					(curl_off_t)strlen(c->body)) != 0;
	}
	bad |= llm_setopt_timeouts(c, connect_ms, total_ms) != 0;
	return bad ? -1 : 0;
}

/* The request body as a NUL-terminated copy owned by c. */
static int llm_body(struct llm_call *c, const struct llm_request *rq)
{
	struct json_object *o = llm_protos[c->provider].request(rq);
	const char *s = o ? jx_str(o, NULL) : NULL;
	int rc = -1;
	if (!s)
		goto out;
	c->body = strdup(s);
	rc = c->body ? 0 : -1;
out:
	json_object_put(o);
	return rc;
}

struct llm_call *llm_call_new(const struct llm_request *rq, llm_token_fn on_token,
			      llm_done_fn on_done, void *u)
{
	struct llm_call *c = NULL;
	if (!llm_request_valid(rq) || !rq->base_url || !*rq->base_url ||
	    (rq->api_key && !llm_header_safe(rq->api_key)))
		goto fail;
	c = llm_alloc(rq->provider, LLM_KIND_CHAT, on_token, on_done, u);
	if (!c)
		goto fail;
	c->stream = rq->stream;
	c->first_token_timeout_ms = rq->first_token_timeout_ms;
	c->idle_timeout_ms = rq->idle_timeout_ms;
	if (c->stream && !(c->sse = sse_parser_new(LLM_EVENT_MAX, llm_on_event, c)))
		goto fail;
	if (llm_body(c, rq) || llm_url(c, rq->base_url, rq->model) || llm_headers(c, rq->api_key) ||
	    llm_easy(c, rq->connect_timeout_ms, rq->total_timeout_ms))
		goto fail;
	return c;
fail:
	llm_call_free(c);
	return NULL;
}

struct llm_call *llm_verify_new(enum llm_provider p, const char *base_url, const char *api_key,
				int64_t timeout_ms, llm_done_fn on_done, void *u)
{
	struct llm_call *c = NULL;
	if ((unsigned)p >= LLM__MAX || !base_url || !*base_url ||
	    (api_key && !llm_header_safe(api_key)))
		goto fail;
	c = llm_alloc(p, LLM_KIND_VERIFY, NULL, on_done, u);
	if (!c || llm_url(c, base_url, NULL) || llm_headers(c, api_key) ||
	    llm_easy(c, timeout_ms, timeout_ms))
		goto fail;
	return c;
fail:
	llm_call_free(c);
	return NULL;
}

CURL *llm_call_easy(struct llm_call *c)
{
	if (c->start_us == 0)
		c->start_us = now_us();
	return c->easy;
}

/* --- completion -------------------------------------------------------------------------- */

/* A 2xx answer the transfer delivered completely. */
static enum llm_status llm_classify_answer(struct llm_call *c)
{
	enum llm_status s = LLM_E_PROTOCOL;
	struct json_object *o = NULL;
	if (c->kind == LLM_KIND_VERIFY)
		return LLM_OK;
	if (c->stream)
		return c->ended ? LLM_OK : LLM_E_PROTOCOL;
	o = jx_parse(c->in.p ? c->in.p : "", c->in.len, LLM_JSON_DEPTH);
	if (o && llm_protos[c->provider].body(c, o) == 0)
		s = LLM_OK;
	else if (c->abort == LLM_AB_CANCEL)
		s = LLM_E_CANCELLED;
	json_object_put(o);
	return s;
}

static enum llm_status llm_classify(struct llm_call *c, CURLcode cc)
{
	int hs = c->res.http_status;
	if (c->abort == LLM_AB_CANCEL)
		return LLM_E_CANCELLED;
	if (c->abort == LLM_AB_TIMEOUT)
		return LLM_E_TIMEOUT;
	if (c->abort == LLM_AB_ERROR)
		return c->stream_err;
	if (hs && !llm_http_ok(hs))
		return llm_classify_http(c);
	if (c->abort == LLM_AB_PROTOCOL)
		return LLM_E_PROTOCOL;
	if (c->stream && c->ended) /* complete, whatever happened to the connection after */
		return LLM_OK;
	if (cc != CURLE_OK)
		return llm_classify_curl(cc);
	return llm_classify_answer(c);
}

static void llm_fill_result(struct llm_call *c, CURLcode cc)
{
	struct llm_result *r = &c->res;
	long hs = 0;
	if (curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &hs) == CURLE_OK && hs)
		r->http_status = (int)hs;
	r->status = llm_classify(c, cc);
	r->text = c->text.p ? c->text.p : "";
	r->text_len = c->text.len;
	r->finish_reason = c->finish[0] ? c->finish : NULL;
	r->total_us = c->start_us ? now_us() - c->start_us : 0;
	if (r->http_status > 0)
		snprintf(r->detail, sizeof(r->detail), "%s (HTTP %d)",
			 llm_status_details[r->status], r->http_status);
	else
		snprintf(r->detail, sizeof(r->detail), "%s", llm_status_details[r->status]);
}

/* Fills the result once and calls on_done as the very last access to c (it may free c). */
static enum llm_status llm_finish(struct llm_call *c, CURLcode cc)
{
	if (c->done)
		return c->res.status;
	c->done = true;
	llm_fill_result(c, cc);
	enum llm_status s = c->res.status;
	if (c->on_done)
		c->on_done(c->u, &c->res);
	return s;
}

void llm_call_done(struct llm_call *c, CURLcode cc)
{
	if (c)
		llm_finish(c, cc);
}

int llm_call_perform(struct llm_call *c)
{
	CURLcode cc = curl_easy_perform(llm_call_easy(c));
	return (int)llm_finish(c, cc);
}

/* Overwrites every header line (one holds the key) before curl frees them. */
static void llm_wipe_headers(struct curl_slist *h)
{
	for (; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
}

void llm_call_free(struct llm_call *c)
{
	if (!c)
		return;
	if (c->easy)
		curl_easy_cleanup(c->easy);
	llm_wipe_headers(c->headers);
	curl_slist_free_all(c->headers);
	free(c->url);
	free(c->body);
	sse_parser_free(c->sse);
	buf_free(&c->in);
	buf_free(&c->text);
	free(c);
}

/* --- retries ----------------------------------------------------------------------------- */

bool llm_retryable(const struct llm_result *r)
{
	if (!r || r->got_tokens)
		return false;
	return r->status == LLM_E_QUOTA || r->status == LLM_E_SERVER ||
	       r->status == LLM_E_UNREACHABLE || r->status == LLM_E_TIMEOUT;
}

/* xorshift64* per thread, seeded from getrandom(): jitter needs spread, not secrecy. */
static uint64_t llm_random(void)
{
	static _Thread_local uint64_t s;
	if (s == 0 && getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = (uint64_t)now_us() ^ (uint64_t)(uintptr_t)&s;
	if (s == 0)
		s = 0x9e3779b97f4a7c15ull;
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 0x2545f4914f6cdd1dull;
}

int64_t llm_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms)
{
	int64_t cap = cap_ms > 0 ? cap_ms : 0;
	int64_t ceil = base_ms > 0 ? base_ms : 0;
	for (int i = 0; i < attempt && ceil > 0 && ceil < cap; i++)
		ceil = ceil > cap / 2 ? cap : ceil * 2;
	if (ceil > cap)
		ceil = cap;
	int64_t d = ceil > 0 ? (int64_t)(llm_random() % ((uint64_t)ceil + 1)) : 0;
	return d < retry_after_ms ? retry_after_ms : d;
}
