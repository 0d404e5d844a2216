/* evcurl.h - libcurl's multi socket interface driven by a libevent loop.
 *
 * Every transfer added here runs on the loop of base: curl tells which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it up (CURLMOPT_TIMERFUNCTION), the loop calls
 * curl_multi_socket_action() when a socket is ready or the timer fires, and each finished
 * transfer is removed from the multi and handed to the done callback. No thread, no polling:
 * bytes reach the easy handle's write callback as soon as the loop sees them.
 *
 * Knows nothing of what the transfers are. One evcurl per loop, used by the loop's thread only.
 */
#ifndef IF_EVCURL_H
#define IF_EVCURL_H

#include <curl/curl.h>

struct event_base;
struct evcurl;

/* Receives a finished transfer, already removed from the multi: the caller owns easy again
 * (it may free it, or add another transfer, from inside the callback). cc is the transfer's
 * result (CURLMSG_DONE). */
typedef void (*evcurl_done_fn)(void *u, CURL *easy, CURLcode cc);

/* New multi on base (borrowed, must outlive the evcurl). NULL on out of memory. Owned by the
 * caller (evcurl_free). curl_global_init() is the program's job. */
struct evcurl *evcurl_new(struct event_base *base, evcurl_done_fn done, void *u);

/* Releases the multi and its events. Remove every transfer still added first. Accepts NULL. */
void evcurl_free(struct evcurl *ec);

/* Starts a transfer: 0, or -1 when curl refuses the handle. The handle is borrowed until the
 * done callback or evcurl_remove(). */
int evcurl_add(struct evcurl *ec, CURL *easy);

/* Stops a transfer added and not finished yet, before its end (no done callback runs for it).
 * NULL is a no-op. */
void evcurl_remove(struct evcurl *ec, CURL *easy);

/* Transfers added and not yet finished or removed. */
int evcurl_active(const struct evcurl *ec);

#endif
