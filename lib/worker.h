/* worker.h - one worker process: pool, threads in an accept loop, graceful stop. */
#ifndef IF_WORKER_H
#define IF_WORKER_H

#include "srv.h"

/* Runs a worker in the current (forked) process until it is told to stop or has served
 * max_requests; never returns (exits the process). Exit code 0 on a clean stop. */
void worker_run(const struct srv_app *app, const struct srv_config *cfg, const void *app_cfg,
		int listen_fd, int ops_fd, struct sb *sb, int slot) __attribute__((noreturn));

#endif
