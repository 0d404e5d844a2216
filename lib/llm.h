/* llm.h - clients of hosted and local large-language-model APIs over libcurl.
 *
 * Three wire protocols:
 *   LLM_OPENAI     Chat Completions: POST {base}/chat/completions, "Authorization: Bearer";
 *                  base ends in /v1 (OpenAI, gateways, Ollama, llama.cpp, vLLM).
 *   LLM_ANTHROPIC  Messages: POST {base}/v1/messages, "x-api-key", "anthropic-version".
 *   LLM_GEMINI     POST {base}/v1beta/models/{model}:generateContent, or
 *                  :streamGenerateContent?alt=sse when streaming; "x-goog-api-key" (the key
 *                  never goes into a URL, where proxies and access logs would keep it).
 *
 * A call is one HTTP transfer on its own curl easy handle. It serves both an event loop and
 * blocking code:
 *   - event loop: c = llm_call_new(); curl_multi_add_handle(multi, llm_call_easy(c)); when the
 *     multi reports the transfer done (CURLMSG_DONE, CURLINFO_PRIVATE gives c):
 *     curl_multi_remove_handle(), then llm_call_done(c, msg->data.result), then (possibly
 *     inside on_done) llm_call_free(c);
 *   - blocking: llm_call_perform(c), then llm_call_free(c).
 * Streaming answers are parsed incrementally (lib/sse) and each piece of text reaches on_token
 * in the write callback that brought its bytes.
 *
 * Timeouts: connect_timeout_ms and total_timeout_ms are curl's own. first_token_timeout_ms and
 * idle_timeout_ms are checked in curl's progress callback, which curl calls when data arrives
 * and, because the call sets a (harmless) low-speed limit, at least once a second in a multi
 * driven by curl_multi_socket_action too: they fire up to about a second late. 0 = none.
 *
 * Threads and process: a call is used by one thread at a time; different calls may run on
 * different threads. curl_global_init() is the program's job, once, before any thread
 * starts (llm never calls it). Calls set CURLOPT_NOSIGNAL, so SIGPIPE must be ignored or
 * blocked by the program. curl's usual proxy environment (http_proxy, https_proxy, no_proxy,
 * ALL_PROXY) is honoured, as with any libcurl program: clear it to go direct.
 *
 * Secrets and provider text: the API key is copied into the call's header list and wiped
 * (explicit_bzero) when the call is freed; it is never put in a URL, a log or a result.
 * Provider error bodies are parsed only to classify the failure; result.detail is a fixed
 * text chosen by status, never provider text.
 */
#ifndef IF_LLM_H
#define IF_LLM_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LLM_BODY_MAX (4u * 1024u * 1024u) /* bytes of a non-streamed body, and of the text */
#define LLM_EVENT_MAX (256u * 1024u)      /* bytes of one streamed event */
#define LLM_ERROR_BODY_MAX (64u * 1024u)  /* bytes of an error body kept to classify it */
#define LLM_ANTHROPIC_MAX_TOKENS 1024     /* max_tokens sent when the request gives none */

enum llm_provider { LLM_OPENAI, LLM_ANTHROPIC, LLM_GEMINI, LLM__MAX };

/* "openai", "anthropic", "gemini"; "?" for anything else. Static. */
const char *llm_provider_name(enum llm_provider p);

/* Parses a provider name (case-insensitive), also "claude" and "google"; LLM__MAX when s is
 * NULL or unknown. */
enum llm_provider llm_provider_parse(const char *s);

enum llm_status {
	LLM_OK,            /* complete answer */
	LLM_E_AUTH,        /* key missing, invalid or not allowed (401, 403, ...) */
	LLM_E_QUOTA,       /* rate limit or quota (429, rate_limit_error, insufficient_quota) */
	LLM_E_BADREQ,      /* the provider refused the request (400, 404, 422), or a bad URL */
	LLM_E_SERVER,      /* provider failure or overload (5xx, 529, overloaded_error) */
	LLM_E_UNREACHABLE, /* resolve, connect, TLS, reset, connection cut */
	LLM_E_TIMEOUT,     /* connect, first token, idle or total timeout */
	LLM_E_PROTOCOL,    /* a 2xx answer that cannot be parsed, or a stream cut before its end */
	LLM_E_CANCELLED,   /* the token callback asked to stop */
	LLM__SMAX
};

/* "ok", "auth", "quota", "badreq", "server", "unreachable", "timeout", "protocol",
 * "cancelled"; "?" for anything else. Static: fit for logs and metric labels. */
const char *llm_status_str(enum llm_status s);

struct llm_msg {
	const char *role;    /* "user" or "assistant" */
	const char *content; /* UTF-8 text */
};

struct llm_request {
	enum llm_provider provider;     /* wire protocol */
	const char *base_url;           /* e.g. https://api.openai.com/v1; trailing '/' ignored */
	const char *api_key;            /* NULL or "" sends no key (local servers) */
	const char *model;              /* model name; Gemini: [A-Za-z0-9._-] only */
	const char *system;             /* system prompt, NULL for none */
	const struct llm_msg *msgs;     /* the conversation, oldest first */
	size_t nmsgs;                   /* at least one */
	int max_tokens;                 /* answer cap; <= 0: provider default (Anthropic: 1024) */
	double temperature;             /* < 0: provider default */
	bool stream;                    /* stream the answer (SSE) */
	int64_t connect_timeout_ms;     /* TCP + TLS; 0 = curl's default (300 s) */
	int64_t first_token_timeout_ms; /* no token (stream) / no byte (otherwise) in time: TIMEOUT
					 */
	int64_t idle_timeout_ms;        /* stream: longest gap between received bytes; 0 = none */
	int64_t total_timeout_ms;       /* whole transfer; 0 = none */
};

struct llm_result {
	enum llm_status status;    /* outcome */
	int http_status;           /* last HTTP status, 0 when none arrived */
	int64_t retry_after_ms;    /* from Retry-After (or retry-after-ms), -1 when absent */
	bool got_tokens;           /* some text already reached on_token: do not retry */
	const char *text;          /* whole answer so far, NUL-terminated; owned by the call */
	size_t text_len;           /* bytes of text */
	int64_t input_tokens;      /* prompt tokens reported by the provider, -1 unknown */
	int64_t output_tokens;     /* answer tokens reported by the provider, -1 unknown */
	const char *finish_reason; /* provider's stop reason, NULL unknown; owned by the call */
	int64_t first_token_us;    /* from the start to the first token, -1 when none */
	int64_t total_us;          /* from the start to the end of the transfer */
	char detail[200];          /* fixed text per status (never provider text, never the key) */
};

/* Receives n bytes of answer text (not NUL-terminated, borrowed for the call). Nonzero
 * cancels the call (status LLM_E_CANCELLED). Must not free the call. */
typedef int (*llm_token_fn)(void *u, const char *tok, size_t n);

/* Receives the outcome, exactly once per call that reaches llm_call_done()/llm_call_perform().
 * res and its strings are borrowed until llm_call_free(); the callback may free the call. */
typedef void (*llm_done_fn)(void *u, const struct llm_result *res);

struct llm_call;

/*
 * Prepares a call: builds the URL, the headers and the JSON body (json-c), and a configured
 * easy handle. Everything in rq is copied; rq may be released at once. on_token may be NULL;
 * a non-streamed answer reaches it when the body is complete, one piece per text part. A
 * call runs once: a retry is a new call. Returns a call owned by the caller
 * (llm_call_free), or NULL when out of memory or rq is invalid (unknown provider, no base URL,
 * model or message, a role other than "user"/"assistant", NULL content, CR/LF in the key).
 * The clock of first_token_us and total_us starts at the first llm_call_easy().
 */
struct llm_call *llm_call_new(const struct llm_request *rq, llm_token_fn on_token,
			      llm_done_fn on_done, void *u);

/* The call's easy handle, to add to the caller's multi; CURLOPT_PRIVATE is c. Borrowed: it
 * lives until llm_call_free(). Starts the call's clock the first time. */
CURL *llm_call_easy(struct llm_call *c);

/* Called once the transfer ended (the multi's CURLMSG_DONE result, after the handle was
 * removed from the multi): classifies the outcome and calls on_done, as its last action. A
 * second call does nothing. */
void llm_call_done(struct llm_call *c, CURLcode cc);

/* Blocking: runs the transfer with curl_easy_perform, then llm_call_done(). Returns the
 * status (also given to on_done). */
int llm_call_perform(struct llm_call *c);

/* Releases the call and its easy handle, wiping the key. It removes nothing from a multi:
 * remove the easy handle first. Accepts NULL. */
void llm_call_free(struct llm_call *c);

/*
 * The cheapest real request proving that base_url and api_key work: GET {base}/models
 * (OpenAI), GET {base}/v1/models (Anthropic), GET {base}/v1beta/models (Gemini). timeout_ms
 * bounds the whole transfer (0 = none). Status LLM_OK on a 2xx answer; the body is ignored.
 * Same ownership and use as llm_call_new(); NULL on OOM or invalid arguments.
 */
struct llm_call *llm_verify_new(enum llm_provider p, const char *base_url, const char *api_key,
				int64_t timeout_ms, llm_done_fn on_done, void *u);

/* True when trying the same request again may succeed and cannot duplicate output:
 * status QUOTA, SERVER, UNREACHABLE or TIMEOUT, and no token reached the caller. NULL: false. */
bool llm_retryable(const struct llm_result *r);

/*
 * Delay before retry number attempt (0 for the first retry): "full jitter" exponential
 * backoff, uniformly random in [0, min(cap_ms, base_ms * 2^attempt)], but never below
 * retry_after_ms (the provider's Retry-After, -1 when none), even above cap_ms. Thread-safe.
 */
int64_t llm_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, int64_t retry_after_ms);

#endif
