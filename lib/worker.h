/* worker.h - one worker process: pool, threads in an accept loop, graceful stop. */
#ifndef IF_WORKER_H
#define IF_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "route.h"
#include "srv.h"

/* Runs a worker in the current (forked) process until it is told to stop or has served
 * max_requests; never returns (exits the process). Exit code 0 on a clean stop. */
void worker_run(const struct srv_app *app, const struct srv_config *cfg, const void *app_cfg,
		int listen_fd, int ops_fd, struct sb *sb, int slot) __attribute__((noreturn));

/* What a request thread does with a request whose match (route_match) is m. */
enum worker_route {
	WORKER_ROUTE_OK,       /* serve app->routes[m->idx] */
	WORKER_ROUTE_NOTFOUND, /* 404: no route; or, on the ops socket, a route that is not
				* ROUTE_INTERNAL (it serves health, status and metrics only) */
	WORKER_ROUTE_METHOD,   /* 405: the path exists with other methods (m->allow) */
	WORKER_ROUTE__MAX
};

/* The decision for match m of app's table on a request thread (ops: the thread serves the ops
 * socket). Pure. */
enum worker_route worker_route_check(const struct srv_app *app, const struct route_match *m,
				     bool ops);

/* The Allow header of a 405 (RFC 9110 section 10.2.1): the methods of the bit set allow (bit i
 * = enum http_method i) in table order, ", "-separated, written into out (cap bytes, always
 * NUL-terminated, cut at a method boundary when too small). Returns out. */
const char *worker_allow(unsigned allow, char *out, size_t cap);

#endif
