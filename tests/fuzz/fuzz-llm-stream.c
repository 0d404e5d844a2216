/* fuzz-llm-stream.c - the AI engine's handling of provider answers (lib/llm.c): streamed SSE
 * events and whole JSON bodies of OpenAI, Anthropic and Gemini, error bodies and Retry-After.
 *
 * lib/llm.c reads answers only through curl, so the target runs a one-connection HTTP server
 * on loopback in a thread: each input is one answer. Input: byte 0 = provider (bits 0-1),
 * streamed or not (bit 2), HTTP status (bits 3-5); byte 1 = the Retry-After value; the rest =
 * the response body. The call is llm_call_perform with short timeouts, as agentd makes it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "llm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int lsock = -1;
static char base_url[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static const uint8_t *answer; /* set by the fuzzer thread, consumed by the server */
static size_t answer_len;
static char answer_head[256];
static int pending;

/* Reads the request (headers, then Content-Length bytes of body) so that curl never sees a
 * reset while still sending. */
static void drain_request(int fd)
{
	char buf[16384];
	size_t have = 0;
	long clen = -1;
	char *hend = NULL;
	for (;;) {
		if (have == sizeof(buf) - 1)
			have = 0; /* a request this big is not ours: keep reading */
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		if (!hend && (hend = strstr(buf, "\r\n\r\n"))) {
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			clen = cl ? strtol(cl + 17, NULL, 10) : 0;
		}
		if (hend && (long)(have - (size_t)(hend + 4 - buf)) >= clen)
			return;
	}
}

static void *server(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(lsock, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&mu);
		while (!pending)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		drain_request(fd);
		(void)!write(fd, answer_head, strlen(answer_head));
		size_t off = 0;
		while (off < answer_len) {
			ssize_t n = write(fd, answer + off, answer_len - off);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		shutdown(fd, SHUT_WR);
		close(fd);
		pthread_mutex_lock(&mu);
		pending = 0;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	lsock = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(lsock, 16) != 0 || getsockname(lsock, (struct sockaddr *)&sa, &sl) != 0)
		abort();
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	pthread_t th;
	if (pthread_create(&th, NULL, server, NULL) != 0)
		abort();
	pthread_detach(th);
	return 0;
}

static int on_token(void *u, const char *tok, size_t n)
{
	size_t *total = u;
	if (n && !tok)
		__builtin_trap();
	*total += n;
	return 0;
}

static void on_done(void *u, const struct llm_result *res)
{
	(void)u;
	if (res->text && strlen(res->text) > res->text_len)
		__builtin_trap();
	if (res->finish_reason)
		(void)strlen(res->finish_reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[8] = {200, 200, 200, 400, 401, 429, 500, 529};
	if (size < 2)
		return 0;
	enum llm_provider prov = (enum llm_provider)((data[0] & 3) % LLM__MAX);
	bool stream = (data[0] & 4) != 0;
	int status = statuses[(data[0] >> 3) & 7];
	snprintf(
		answer_head, sizeof(answer_head),
		"HTTP/1.1 %d X\r\nContent-Type: %s\r\nRetry-After: %u\r\nConnection: close\r\n\r\n",
		status, stream ? "text/event-stream" : "application/json", data[1]);
	pthread_mutex_lock(&mu);
	answer = data + 2;
	answer_len = size - 2;
	pending = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);

	struct llm_msg msg = {"user", "hello"};
	struct llm_request rq = {.provider = prov,
				 .base_url = base_url,
				 .api_key = "sk-fuzz",
				 .model = "m",
				 .system = "be brief",
				 .msgs = &msg,
				 .nmsgs = 1,
				 .max_tokens = 16,
				 .temperature = -1,
				 .stream = stream,
				 .connect_timeout_ms = 2000,
				 .first_token_timeout_ms = 5000,
				 .idle_timeout_ms = 5000,
				 .total_timeout_ms = 10000};
	size_t total = 0;
	struct llm_call *c = llm_call_new(&rq, on_token, on_done, &total);
	if (c) {
		(void)llm_call_perform(c);
		llm_call_free(c);
	}
	/* the server has written the answer and closed before the next input (when the call
	 * never connected, nobody will take it: drop it after a while) */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += c ? 3 : 0;
	pthread_mutex_lock(&mu);
	while (pending && pthread_cond_timedwait(&cv, &mu, &until) == 0)
		;
	pending = 0;
	pthread_mutex_unlock(&mu);
	return 0;
}
