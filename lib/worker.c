/* worker.c - the accept loop and the life of one request (ARCHITECTURE.md section 2).
 *
 * The request threads of a worker wait in one shared epoll holding the listening socket
 * (one-shot: it wakes one thread, which accepts waiting connections into the epoll, as many
 * as its worker has idle threads, see below, and re-arms it), the
 * per-worker stop eventfd (level-triggered: every thread sees it) and the idle kept
 * connections. Waiters of one epoll are woken one per event, so nothing stampedes. The
 * listening socket is non-blocking, so a thread that loses an accept race gets EAGAIN from
 * FCGX_Accept_r and simply waits again. A stop request makes every idle thread leave its loop
 * at once while busy threads finish the request they are serving. The ops thread waits alone
 * in its own epoll on the ops socket.
 *
 * Persistent connections (nginx's fastcgi_keep_conn with an upstream keepalive pool): libfcgi
 * keeps a connection open after FCGX_Finish_r when the web server asked for it (FCGI_KEEP_CONN),
 * and its next FCGX_Accept_r on that request object reads the next request from it with a
 * blocking read. A thread must never wait there: nginx may leave the connection idle for a
 * minute while new connections queue behind it. So a kept connection is parked instead: its
 * request object (data.ptr) joins the shared epoll, one-shot, and the thread goes back to
 * waiting. A new connection joins the same way as soon as it is accepted, so new and kept
 * connections are served in the order they became readable. The thread woken when one becomes
 * readable owns it alone and calls FCGX_Accept_r on
 * it: the next request is already there (or the connection's end, which closes it). An idle
 * kept connection thus costs a file descriptor, never a thread. Before finishing a request on
 * a kept connection, what is left of its input (a body the handler did not read) is consumed,
 * so the next request starts at a record boundary; a large unread body closes it instead.
 */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "db.h"
#include "http.h"
#include "kv.h"
#include "log.h"
#include "metrics.h"
#include "sb.h"

struct worker {
	struct wctx w;        /* shared by the threads */
	struct kv_shared kvs; /* Redis state of this worker */
	int listen_fd;        /* shared listening socket */
	int ops_fd;           /* shared ops socket (internal routes), -1 none */
	int stop_fd;          /* eventfd: readable once stopping */
	int ep;               /* epoll of the request threads: socket, stop, kept conns */
	pthread_t *threads;   /* accept threads */
	struct tctx *tctx;    /* their contexts */
	int nthreads;         /* count */
	atomic_int running;   /* threads still in their loop */
	atomic_int idle;      /* request threads waiting in ep */
};

enum worker_route worker_route_check(const struct srv_app *app, const struct route_match *m,
				     bool ops)
{
	if (m->idx < 0)
		return m->allow ? WORKER_ROUTE_METHOD : WORKER_ROUTE_NOTFOUND;
	if (ops && !(app->routes[m->idx].flags & ROUTE_INTERNAL))
		return WORKER_ROUTE_NOTFOUND;
	return WORKER_ROUTE_OK;
}

const char *worker_allow(unsigned allow, char *out, size_t cap)
{
	size_t n = 0;
	if (cap)
		out[0] = '\0';
	for (int i = 0; i < HM__MAX; i++) {
		if (!(allow & (1u << i)))
			continue;
		int k = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", http_method_names[i]);
		if (k < 0 || (size_t)k >= cap - n) {
			out[n] = '\0'; /* not this one: cut at the last whole method */
			break;
		}
		n += (size_t)k;
	}
	return out;
}

/* Routes a request that was read: the 404/405 answers, else the middleware (which may answer
 * itself, e.g. a 429), the body and the handler. Returns the enum rc of the request. */
static int dispatch(struct req *r, struct sb_thread *st)
{
	const struct srv_app *app = r->w->app;
	route_match(app->routes, app->nroutes, r->method, r->path, r->a, &r->m);
	switch (worker_route_check(app, &r->m, r->t->ops)) {
	case WORKER_ROUTE_METHOD: {
		char allow[96];
		res_header(r, "Allow", worker_allow(r->m.allow, allow, sizeof(allow)));
		return req_fail(r, RC_METHOD, "Method Not Allowed");
	}
	case WORKER_ROUTE_OK: break;
	default: return req_fail(r, RC_NOTFOUND, "Not Found");
	}
	r->route = &app->routes[r->m.idx];
	atomic_store(&st->route, r->m.idx);
	int rc = app->before ? app->before(r) : RC_OK;
	/* a middleware that set a response itself (a 429 with its own body) has answered the
	 * request: neither body nor handler run */
	if (rc != RC_OK || r->status != 0)
		return rc;
	if (r->route->flags & (ROUTE_JSON | ROUTE_RAW))
		rc = http_read_body(r);
	if (rc == RC_OK)
		rc = r->route->fn(r);
	return rc;
}

static void handle(struct tctx *t, FCGX_Request *fr)
{
	struct wctx *w = t->w;
	const struct srv_app *app = w->app;
	struct sb_thread *st = &w->sb->workers[w->slot].threads[t->idx];
	struct req r;
	memset(&r, 0, sizeof(r));
	r.w = w;
	r.t = t;
	r.fcgx = fr;
	r.a = t->arena;
	r.pool = w->db;
	r.start_us = now_us();
	buf_init(&r.out, r.a);
	atomic_store(&st->start_us, r.start_us);
	atomic_store(&st->state, SBT_BUSY);

	int rc = http_read(&r);
	snprintf(t->rid, sizeof(t->rid), "%s", r.rid);
	atomic_store(&t->slowlogged, false);
	if (rc == RC_OK)
		rc = dispatch(&r, st);
	db_done(&r.c);
	if (app->committed && rc == RC_OK)
		app->committed(&r);
	http_finish(&r, (enum rc)rc);
	/* route x status class, latency bucket, slow (lib/metrics.c): counted before the end of
	 * the response is sent, so a client that reads /metrics next always sees its request */
	metrics_request(&r, now_us() - r.start_us);
	if (fr->keepConnection) {
		/* the next request on a kept connection starts after this one's input: read what
		 * the handler left (a body it did not need), or close when that is large */
		if (r.body_len > 65536 && !r.body)
			fr->keepConnection = 0;
		else {
			char skip[4096];
			while (FCGX_GetStr(skip, sizeof(skip), fr->in) > 0)
				;
		}
	}
	FCGX_Finish_r(fr);

	int64_t dur = now_us() - r.start_us;
	log_access(r.rid, r.method_str, r.route ? r.route->pattern : NULL, r.path, r.status, dur);
	if (w->cfg->slow_request_ms > 0 && dur / 1000 >= w->cfg->slow_request_ms)
		log_msg(LL_WARN, r.rid, "slow request: %s %s took %lld ms", r.method_str,
			r.route ? r.route->pattern : r.path, (long long)(dur / 1000));
	if (app->after)
		app->after(&r);
	if (r.detail_list)
		json_object_put(r.detail_list);
	arena_reset(t->arena);
	atomic_fetch_add(&st->requests, 1);
	atomic_fetch_add(&w->sb->workers[w->slot].requests, 1);
	atomic_store(&st->route, -1);
	atomic_store(&st->client, 0);
	atomic_store(&st->state, SBT_IDLE);
}

/* A new request object on lfd. */
static FCGX_Request *req_new(int lfd)
{
	FCGX_Request *fr = malloc(sizeof(*fr));
	if (fr)
		FCGX_InitRequest(fr, lfd, 0);
	return fr;
}

static void req_del(FCGX_Request *fr)
{
	FCGX_Free(fr, 1);
	free(fr);
}

/* The tags of the shared epoll's other members (data.ptr); a kept connection's is its
 * FCGX_Request. */
static char tag_listen, tag_stop;

/* After a request: parks its connection in ep when it is kept (true: fr now belongs to ep),
 * else leaves fr free for the next accept (false). */
static bool park(int ep, FCGX_Request *fr)
{
	if (fr->ipcFd < 0 || !fr->keepConnection || ep < 0)
		return false;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = fr};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fr->ipcFd, &ev) == 0 ||
	    (errno == ENOENT && epoll_ctl(ep, EPOLL_CTL_ADD, fr->ipcFd, &ev) == 0))
		return true;
	log_msg(LL_WARN, NULL, "cannot park a kept connection: %s", strerror(errno));
	FCGX_Free(fr, 1);
	return false;
}

/* Serves the request accepted (or read from a kept connection) into fr. */
static void serve(struct tctx *t, FCGX_Request *fr)
{
	handle(t, fr);
	uint64_t served = atomic_fetch_add(&t->w->requests, 1) + 1;
	int64_t max_req = t->w->cfg->max_requests;
	if (max_req > 0 && served == (uint64_t)max_req) {
		log_msg(LL_INFO, NULL, "served %llu requests, recycling",
			(unsigned long long)served);
		kill(getpid(), SIGTERM);
	}
}

/* FCGX_Accept_r's answer: true when a request was read into fr. */
static bool accepted(int rc)
{
	if (rc >= 0)
		return true;
	if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR || rc == -ECONNABORTED)
		return false;
	log_msg(LL_WARN, NULL, "accept failed: %s", strerror(-rc));
	struct timespec ts = {0, 10 * 1000 * 1000};
	nanosleep(&ts, NULL);
	return false;
}

/* Accepts the connections waiting on lfd (at most max: this thread and the worker's other idle
 * ones, so a busy worker does not hoard connections another worker could serve) into request
 * objects parked in ep:
 * the thread woken when one is readable reads its request with FCGX_Accept_r. libfcgi has no
 * call that adopts an accepted descriptor: ipcFd is set directly, and keepConnection so that
 * FCGX_Accept_r's opening FCGX_Finish_r keeps it open (the request's FCGI_BEGIN_REQUEST then
 * sets keepConnection as the web server asked). */
static void accept_all(int ep, int lfd, int max)
{
	for (int i = 0; i < max; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_msg(LL_WARN, NULL, "accept failed: %s", strerror(errno));
				struct timespec ts = {0, 10 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
			return;
		}
		FCGX_Request *fr = req_new(lfd);
		if (!fr) {
			close(fd);
			continue;
		}
		fr->ipcFd = fd;
		fr->keepConnection = 1;
		if (!park(ep, fr))
			req_del(fr);
	}
}

/* The epoll a request thread waits in: the listening socket and the stop eventfd, one-shot
 * for the socket so that one new connection wakes one thread; kept connections join it while
 * idle (park). Waiters of one epoll are woken one per event. */
static int shared_epoll(int lfd, int stop_fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &tag_listen};
	struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &tag_stop};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd, &sev) < 0) {
		if (ep >= 0)
			close(ep);
		return -1;
	}
	return ep;
}

/* Stopping: serves the connections readable in ep (accepted, or kept with a request sent),
 * closing each after its answer, so that a reload or a recycling loses no request that
 * reached this worker. A connection accepted just before the stop may not have its request
 * yet (nginx writes it right after connecting; on a busy machine, a little later): closing it
 * unread would reset it under nginx (a 503 to the client), so readiness is polled for a short
 * grace (the stop eventfd is level-triggered in ep: epoll_wait cannot simply block). */
#define FINISH_GRACE_MS 100
#define FINISH_POLL_MS 2

static void finish_ready(struct tctx *t, int ep)
{
	int quiet_ms = 0;
	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, 0);
		int conns = 0;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &tag_stop || evs[i].data.ptr == &tag_listen)
				continue;
			FCGX_Request *kr = evs[i].data.ptr;
			conns++;
			if (accepted(FCGX_Accept_r(kr)))
				serve(t, kr);
			req_del(kr);
		}
		if (conns > 0)
			continue;
		if (quiet_ms >= FINISH_GRACE_MS)
			return;
		struct timespec ts = {0, FINISH_POLL_MS * 1000 * 1000};
		nanosleep(&ts, NULL);
		quiet_ms += FINISH_POLL_MS;
	}
}

static void *thread_main(void *arg)
{
	struct tctx *t = arg;
	struct worker *wk = (struct worker *)t->w; /* w is the first member */
	struct sb_thread *st = &t->w->sb->workers[t->w->slot].threads[t->idx];
	int lfd = t->ops ? wk->ops_fd : wk->listen_fd;
	/* the ops thread waits alone on its own socket; the request threads share wk->ep */
	int ep = t->ops ? shared_epoll(lfd, wk->stop_fd) : wk->ep;
	FCGX_Request *spare = req_new(lfd);
	if (!spare || ep < 0) {
		log_msg(LL_ERROR, NULL, "epoll setup failed: %s", strerror(errno));
		goto out;
	}
	struct epoll_event rearm = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &tag_listen};

	for (;;) {
		struct epoll_event ev;
		if (!t->ops)
			atomic_fetch_add(&wk->idle, 1);
		int n = epoll_wait(ep, &ev, 1, -1);
		if (!t->ops)
			atomic_fetch_sub(&wk->idle, 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LL_ERROR, NULL, "epoll_wait: %s", strerror(errno));
			break;
		}
		if (n == 0)
			continue;
		if (ev.data.ptr == &tag_stop) {
			if (!t->ops)
				finish_ready(t, ep);
			break;
		}
		if (ev.data.ptr == &tag_listen && !t->ops) {
			/* every waiting connection joins the epoll like a kept one, so new and
			 * kept connections are served in the order they became readable (one
			 * accept per wakeup left new connections behind every kept one: a
			 * p99 of hundreds of ms under keepalive) */
			accept_all(ep, lfd, 1 + atomic_load(&wk->idle));
			epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &rearm);
			continue;
		}
		if (ev.data.ptr == &tag_listen) {
			if (!spare && !(spare = req_new(lfd))) {
				log_msg(LL_ERROR, NULL, "out of memory for a request");
				epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &rearm);
				continue;
			}
			bool ok = accepted(FCGX_Accept_r(spare));
			/* the next connection is another thread's while this one serves */
			epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &rearm);
			if (ok)
				serve(t, spare);
			continue;
		}
		/* a kept connection with its next request (or its end): ours alone (one-shot).
		 * FCGX_Accept_r reads it; at the connection's end it closes it and tries the
		 * listening socket (non-blocking) instead. */
		FCGX_Request *kr = ev.data.ptr;
		bool kept = accepted(FCGX_Accept_r(kr));
		if (kept) {
			serve(t, kr);
			kept = park(ep, kr);
		}
		if (!kept) {
			if (!spare) {
				FCGX_Free(kr, 1);
				spare = kr;
			} else {
				req_del(kr);
			}
		}
	}
out:
	atomic_store(&st->state, SBT_DONE);
	if (t->ops && ep >= 0)
		close(ep);
	if (spare)
		req_del(spare);
	atomic_fetch_sub(&wk->running, 1);
	return NULL;
}

/* The worker's pool (none without a database_url), its stop eventfd, libfcgi, then the
 * application's worker_init. Exits the process when any of them fails. */
static void setup(struct worker *wk)
{
	const struct srv_config *cfg = wk->w.cfg;
	const struct srv_app *app = wk->w.app;
	struct db_pool_opts po = {
		.conninfo = cfg->database_url,
		.size = (int)cfg->db_pool_size,
		.overflow = (int)cfg->db_max_overflow,
		.timeout_ms = cfg->db_pool_timeout_s * 1000,
		.recycle_s = cfg->db_pool_recycle_s,
		.pre_ping = cfg->db_pool_pre_ping,
		.statement_timeout_ms = cfg->db_statement_timeout_ms,
		.lock_timeout_ms = cfg->db_lock_timeout_ms,
		.application_name = app->name,
	};
	/* a server without a database (database_url empty) has no pool: db_* answer 503 */
	bool want_db = cfg->database_url && *cfg->database_url;
	wk->w.db = want_db ? db_pool_new(&po) : NULL;
	wk->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	wk->ep = shared_epoll(wk->listen_fd, wk->stop_fd);
	if ((want_db && !wk->w.db) || wk->stop_fd < 0 || wk->ep < 0 || FCGX_Init() != 0) {
		log_msg(LL_ERROR, NULL, "worker init failed");
		_exit(1);
	}
	if (app->worker_init && app->worker_init(&wk->w) != 0) {
		log_msg(LL_ERROR, NULL, "application worker init failed");
		_exit(1);
	}
}

/* Starts the request threads and the ops thread (the last of wk->nthreads, when nreq is
 * less); each has its arena and Redis handle. Exits the process when a thread cannot start. */
static void start_threads(struct worker *wk, int nreq)
{
	const struct srv_config *cfg = wk->w.cfg;
	wk->threads = calloc((size_t)wk->nthreads, sizeof(pthread_t));
	wk->tctx = calloc((size_t)wk->nthreads, sizeof(struct tctx));
	if (!wk->threads || !wk->tctx) {
		log_msg(LL_ERROR, NULL, "worker init failed: out of memory");
		_exit(1);
	}
	atomic_store(&wk->running, wk->nthreads);
	for (int i = 0; i < wk->nthreads; i++) {
		struct tctx *t = &wk->tctx[i];
		t->w = &wk->w;
		t->idx = i;
		t->ops = i >= nreq;
		t->arena = arena_new(16384);
		t->kv = kv_new(cfg->redis_url, cfg->redis_connect_timeout_ms,
			       cfg->redis_command_timeout_ms, &wk->kvs);
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 256 * 1024);
		if (pthread_create(&wk->threads[i], &at, thread_main, t) != 0) {
			log_msg(LL_ERROR, NULL, "cannot start thread %d", i);
			_exit(1);
		}
		pthread_attr_destroy(&at);
	}
}

/* The watchdog of long requests (PHP-FPM's request_slowlog_timeout and
 * request_terminate_timeout): names each request running past the slow-log threshold once,
 * and returns how many run past the terminate limit (the worker then ends them). */
static int watch_requests(struct worker *wk)
{
	const struct srv_config *cfg = wk->w.cfg;
	struct sb_worker *sw = &wk->w.sb->workers[wk->w.slot];
	int64_t now = now_us();
	int over = 0;
	for (int i = 0; i < wk->nthreads; i++) {
		struct sb_thread *st = &sw->threads[i];
		if (atomic_load(&st->state) != SBT_BUSY)
			continue;
		int64_t ms = (now - atomic_load(&st->start_us)) / 1000;
		int rt = atomic_load(&st->route);
		const char *route = rt >= 0 && (size_t)rt < wk->w.app->nroutes
					    ? wk->w.app->routes[rt].pattern
					    : "-";
		if (cfg->request_slowlog_timeout_ms > 0 && ms >= cfg->request_slowlog_timeout_ms &&
		    !atomic_exchange(&wk->tctx[i].slowlogged, true)) {
			atomic_fetch_add(&sw->c[SBC_SLOWLOG], 1);
			log_msg(LL_WARN, wk->tctx[i].rid, "request still running after %lld ms: %s",
				(long long)ms, route);
		}
		if (cfg->request_terminate_timeout_ms > 0 &&
		    ms >= cfg->request_terminate_timeout_ms) {
			atomic_fetch_add(&sw->c[SBC_TERMINATED], 1);
			log_msg(LL_ERROR, wk->tctx[i].rid,
				"request over request_terminate_timeout_ms (%lld ms): %s; ending it "
				"(worker %d stops accepting and exits)",
				(long long)ms, route, wk->w.slot);
			over++;
		}
	}
	return over;
}

/* Waits for a stop: copies the pool and Redis gauges to the scoreboard twice a second
 * meanwhile, and watches long requests. Returns on TERM, INT or HUP (graceful) with 0, or with
 * the count of requests past request_terminate_timeout_ms; exits at once on QUIT. The signals
 * stay blocked in every thread; only this one collects them. */
static int wait_for_stop(struct worker *wk)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		metrics_sample(&wk->w);
		int over = watch_requests(wk);
		if (over > 0)
			return over;
		struct timespec tick = {0, 500 * 1000 * 1000};
		int sig = sigtimedwait(&set, NULL, &tick);
		if (sig < 0)
			continue;
		if (sig == SIGQUIT) {
			log_msg(LL_WARN, NULL, "worker %d: immediate stop", wk->w.slot);
			_exit(0);
		}
		return 0;
	}
}

/* Wakes the idle threads and gives busy ones graceful_timeout_s to finish their request;
 * exits the process (code 1) when some are still running after that. stuck requests (past
 * request_terminate_timeout_ms) are not waited for: once the others are done, the exit ends
 * them (nginx answers their clients 502, as JSON). */
static void drain(struct worker *wk, int stuck)
{
	const struct srv_config *cfg = wk->w.cfg;
	atomic_store(&wk->w.sb->workers[wk->w.slot].state, SBW_STOPPING);
	uint64_t one = 1;
	ssize_t wr = write(wk->stop_fd, &one, sizeof(one));
	(void)wr;
	int64_t deadline = now_us() + cfg->graceful_timeout_s * 1000000;
	while (atomic_load(&wk->running) > stuck && now_us() < deadline) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (stuck > 0 && atomic_load(&wk->running) <= stuck) {
		log_msg(LL_WARN, NULL,
			"worker %d: ending %d request(s) past request_terminate_timeout_ms",
			wk->w.slot, stuck);
		_exit(1);
	}
	if (atomic_load(&wk->running) > 0) {
		log_msg(LL_WARN, NULL, "worker %d: %d requests still running after %llds, exiting",
			wk->w.slot, atomic_load(&wk->running), (long long)cfg->graceful_timeout_s);
		_exit(1);
	}
	for (int i = 0; i < wk->nthreads; i++)
		pthread_join(wk->threads[i], NULL);
}

/* After the threads are gone: the last gauges, the application's worker_fini, then what
 * setup and start_threads made. */
static void teardown(struct worker *wk)
{
	metrics_sample(&wk->w); /* last pool/Redis counters, folded into the totals on reap */
	if (wk->w.app->worker_fini)
		wk->w.app->worker_fini(&wk->w);
	for (int i = 0; i < wk->nthreads; i++) {
		kv_free(wk->tctx[i].kv);
		arena_free(wk->tctx[i].arena);
	}
	db_pool_free(wk->w.db);
	free(wk->threads);
	free(wk->tctx);
}

void worker_run(const struct srv_app *app, const struct srv_config *cfg, const void *app_cfg,
		int listen_fd, int ops_fd, struct sb *sb, int slot)
{
	static struct worker wk;
	memset(&wk, 0, sizeof(wk));
	/* die with the master rather than linger as an orphan accepting requests */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* Large short-lived buffers (big bodies, a library's work areas) must go back to the
	 * kernel when freed. glibc raises its mmap threshold dynamically after the first such
	 * free, after which they stay resident in each thread's arena: a fixed threshold keeps
	 * an idle worker at a few MiB. An application with its own policy (app/pwpool.c keeps
	 * the argon2 block in its hashing threads) sets its own in worker_init. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	signal(SIGPIPE, SIG_IGN);

	wk.w.cfg = cfg;
	wk.w.app_cfg = app_cfg;
	wk.w.app = app;
	wk.w.sb = sb;
	wk.w.slot = slot;
	wk.w.pid = getpid();
	wk.w.kv_shared = &wk.kvs;
	kv_shared_init(&wk.kvs);
	wk.listen_fd = listen_fd;
	wk.ops_fd = ops_fd;
	/* the request threads, plus one on the ops socket: its scoreboard slot is the one after
	 * the request threads', outside what busy/total count */
	int nreq = (int)cfg->threads;
	wk.nthreads = nreq + (ops_fd >= 0 && nreq < SB_MAX_THREADS ? 1 : 0);

	setup(&wk);
	start_threads(&wk, nreq);
	atomic_store(&sb->workers[slot].state, SBW_RUNNING);
	log_msg(LL_INFO, NULL, "worker %d ready (%d threads)", slot, wk.nthreads);
	int stuck = wait_for_stop(&wk);
	drain(&wk, stuck);
	teardown(&wk);
	_exit(0);
}
