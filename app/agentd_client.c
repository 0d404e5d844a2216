/* agentd_client.c - the API asks ideaforge-agentd for its figures, so that one scrape of the
 * API's /metrics (and one look at /status) covers the AI engine too (issue 11, operations). */
#include "agentd_client.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../lib/arena.h"

#define AGENTD_FIGURES_MAX (256u << 10) /* a status document or a metrics page */
#define AGENTD_TIMEOUT_MS 500           /* figures, not work: never hold a probe longer */

struct sink {
	struct buf *b; /* where the body goes */
	bool over;     /* the body passed AGENTD_FIGURES_MAX */
};

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
	struct sink *s = u;
	if (s->b->len + size * n > AGENTD_FIGURES_MAX) {
		s->over = true;
		return 0;
	}
	buf_append(s->b, p, size * n);
	return size * n;
}

int agentd_fetch(const char *listen, const char *path, struct buf *out)
{
	if (!listen || !*listen)
		return -1;
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	char url[256];
	if (strncmp(listen, "unix:", 5) == 0) {
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, listen + 5);
		snprintf(url, sizeof(url), "http://agentd%s", path);
	} else {
		snprintf(url, sizeof(url), "http://%s%s", listen, path);
	}
	struct sink s = {out, false};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)AGENTD_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cc != CURLE_OK || s.over || status != 200)
		return -1;
	buf_putc(out, '\0');
	out->len--;
	return 0;
}
