/* pm.h - the process manager of the master: forks, reaps, respawns, reloads, scales and stops
 * workers (PHP-FPM's model). The scaling policy (struct pm_scaler) is kept apart from the
 * mechanics, as pure functions of (config, time, load), so it can be unit-tested with
 * synthetic time.
 *
 * Modes (config key pm):
 *   static    `workers` workers, always.
 *   dynamic   starts `workers`, then keeps between workers_min and workers_max following the
 *             seed's HPA policy on one machine: every 1-second tick the recommendation is the
 *             fewest workers that keep busy threads at or below pm_scale_up_busy_pct (70 %) of
 *             all threads (and at least pm_min_spare_threads idle); when every thread was busy
 *             the whole tick the true demand is unknown (it waits in the socket backlog), so
 *             the recommendation is the current size plus a full step. Scale up at once, at
 *             most pm_scale_up_step (4) workers per tick. Scale down only to the highest
 *             recommendation seen over the last pm_scale_down_window_s (300 s, the HPA
 *             stabilisation window), at most pm_scale_down_step (2) workers per
 *             pm_scale_down_period_s (60 s), and only while more than pm_max_spare_threads
 *             threads are idle; the victims are the workers idle the longest, stopped
 *             gracefully (they finish in-flight requests).
 *   ondemand  like dynamic upwards, but starts workers_min (may be 0) workers: with none
 *             running the master watches the listening socket and forks one as soon as a
 *             connection waits. A worker that served nothing for pm_idle_timeout_s is stopped
 *             (never below workers_min); no stabilisation window.
 * Never more than workers_max: when the policy wants more, a warning is logged once and
 * re-armed once the load falls below the maximum; the scoreboard counts these events.
 */
#ifndef IF_PM_H
#define IF_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "srv.h"

/* Supervises workers until SIGTERM/SIGINT (graceful) or SIGQUIT (immediate). cfg and app_cfg
 * are owned by the caller until a SIGHUP reload replaces them (pm then owns the new ones and
 * frees the old through app->config_free). Returns the exit code. */
int pm_run(const struct srv_app *app, int argc, char **argv, struct srv_config *cfg, void *app_cfg,
	   int listen_fd, int ops_fd, struct sb *sb);

/* --- the scaling policy ------------------------------------------------------------------ */

struct pm_scaler {
	int window;           /* seconds in the ring (pm_scale_down_window_s, at least 1) */
	int *ring;            /* clamped recommendation per second: ring[second % window] */
	int64_t ring_s;       /* last second written into the ring */
	int nsteps;           /* entries in downs (pm_scale_down_step) */
	int64_t *downs;       /* seconds of the last nsteps removals (INT64_MIN = none) */
	int downs_i;          /* next entry of downs to overwrite (the oldest) */
	bool max_warned;      /* the workers_max warning is out; re-armed when load eases */
	uint64_t max_reached; /* times the policy wanted more than workers_max */
};

struct pm_decision {
	int rec_raw;  /* workers the load asks for, unclamped */
	int rec;      /* the same within [workers_min, workers_max] */
	int stable;   /* highest recommendation over the window (what scale-down goes to) */
	int up;       /* workers to add now */
	int down;     /* workers to remove now */
	bool max_hit; /* the policy just started wanting more than workers_max: warn */
};

/* Sets s up for c with `current` workers at second now_s: the window is filled with
 * `current`, so nothing is removed during the first window. 0, or -1 on out of memory.
 * Call pm_scaler_fini to release; pm_scaler_fini accepts a zeroed struct. */
int pm_scaler_init(struct pm_scaler *s, const struct srv_config *c, int current, int64_t now_s);
void pm_scaler_fini(struct pm_scaler *s);

/* The unclamped recommendation for `busy` busy threads (average over the tick) out of `total`
 * threads, with `current` workers (see the comment at the top). */
int pm_recommend(const struct srv_config *c, int current, double busy, double total);

/* One tick at second now_s: records the recommendation and decides. Removals it decides are
 * recorded as done (the caller stops that many workers). Ondemand never decides a removal here
 * (its workers leave by idle timeout). */
void pm_scaler_tick(struct pm_scaler *s, const struct srv_config *c, int64_t now_s, int current,
		    double busy, double total, struct pm_decision *d);

#endif
