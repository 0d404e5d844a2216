/* evcurl.c - libcurl multi socket API on a libevent loop (see evcurl.h).
 *
 * The pattern is libcurl's documented one (curl_multi_socket_action(3), "hiperfifo"):
 * one libevent event per socket curl asks us to watch, re-armed when curl changes what it
 * waits for, and one timer for curl's timeouts.
 */
#include "evcurl.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>

struct evcurl {
	struct event_base *base; /* the loop (borrowed) */
	CURLM *multi;            /* all transfers */
	struct event *timer;     /* curl's timeout */
	evcurl_done_fn done;     /* finished transfers go here */
	void *u;                 /* its argument */
	int active;              /* transfers added, not finished */
};

/* What one socket curl watches holds: its event (socketp of curl_multi_assign). */
struct evcurl_sock {
	struct event *ev; /* EV_PERSIST read and/or write event */
	int what;         /* CURL_POLL_* it was armed for */
};

/* Hands every finished transfer to the done callback. */
static void evcurl_reap(struct evcurl *ec)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(ec->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg does not survive the removal: copy what we need first */
		CURL *easy = msg->easy_handle;
		CURLcode cc = msg->data.result;
		curl_multi_remove_handle(ec->multi, easy);
		ec->active--;
		ec->done(ec->u, easy, cc);
	}
}

static void evcurl_on_sock(evutil_socket_t fd, short events, void *arg)
{
	struct evcurl *ec = arg;
	int action = ((events & EV_READ) ? CURL_CSELECT_IN : 0) |
		     ((events & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(ec->multi, fd, action, &running);
	evcurl_reap(ec);
}

static void evcurl_on_timer(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	struct evcurl *ec = arg;
	int running;
	curl_multi_socket_action(ec->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	evcurl_reap(ec);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what, or stop watching it. */
static int evcurl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	struct evcurl *ec = userp;
	struct evcurl_sock *es = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (es) {
			event_free(es->ev);
			free(es);
			curl_multi_assign(ec->multi, s, NULL);
		}
		return 0;
	}
	if (es && es->what == what)
		return 0;
	short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
			     ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
	if (!es) {
		es = calloc(1, sizeof(*es));
		if (!es)
			return -1;
		curl_multi_assign(ec->multi, s, es);
	} else {
		event_free(es->ev);
	}
	es->what = what;
	es->ev = event_new(ec->base, s, kind, evcurl_on_sock, ec);
	if (!es->ev || event_add(es->ev, NULL) != 0)
		return -1;
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or disarm the single timer. */
static int evcurl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct evcurl *ec = userp;
	if (timeout_ms < 0) {
		evtimer_del(ec->timer);
		return 0;
	}
	/* 0 means "as soon as possible": not from inside this callback, from the loop */
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	return evtimer_add(ec->timer, &tv) == 0 ? 0 : -1;
}

struct evcurl *evcurl_new(struct event_base *base, evcurl_done_fn done, void *u)
{
	struct evcurl *ec = calloc(1, sizeof(*ec));
	if (!ec)
		return NULL;
	ec->base = base;
	ec->done = done;
	ec->u = u;
	ec->multi = curl_multi_init();
	ec->timer = evtimer_new(base, evcurl_on_timer, ec);
	if (!ec->multi || !ec->timer) {
		evcurl_free(ec);
		return NULL;
	}
	curl_multi_setopt(ec->multi, CURLMOPT_SOCKETFUNCTION, evcurl_socket_cb);
	curl_multi_setopt(ec->multi, CURLMOPT_SOCKETDATA, ec);
	curl_multi_setopt(ec->multi, CURLMOPT_TIMERFUNCTION, evcurl_timer_cb);
	curl_multi_setopt(ec->multi, CURLMOPT_TIMERDATA, ec);
	return ec;
}

void evcurl_free(struct evcurl *ec)
{
	if (!ec)
		return;
	if (ec->multi)
		curl_multi_cleanup(ec->multi);
	if (ec->timer)
		event_free(ec->timer);
	free(ec);
}

int evcurl_add(struct evcurl *ec, CURL *easy)
{
	if (curl_multi_add_handle(ec->multi, easy) != CURLM_OK)
		return -1;
	ec->active++;
	return 0;
}

void evcurl_remove(struct evcurl *ec, CURL *easy)
{
	if (easy && curl_multi_remove_handle(ec->multi, easy) == CURLM_OK)
		ec->active--;
}

int evcurl_active(const struct evcurl *ec)
{
	return ec->active;
}
