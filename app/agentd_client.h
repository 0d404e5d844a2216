/* agentd_client.h - figures of ideaforge-agentd, read by the API (app/agentd_client.c). */
#ifndef IF_APP_AGENTD_CLIENT_H
#define IF_APP_AGENTD_CLIENT_H

#include "../lib/buf.h"

/* GETs path ("/status", "/metrics") from the agentd at listen (agentd_listen: "unix:/path" or
 * "host:port") within 500 ms, appending the body (at most 256 KiB, NUL-terminated past len)
 * to out. 0, or -1 when agentd does not answer 200 in time (not running, another host). */
int agentd_fetch(const char *listen, const char *path, struct buf *out);

#endif
