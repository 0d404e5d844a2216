/* pm.c - the master: supervision mechanics and the scaling policy (see pm.h).
 *
 * Signals are read from a signalfd in the master's poll loop, so no work happens in signal
 * handlers. The loop wakes at least every PM_SAMPLE_MS to sample busy threads from the
 * scoreboard; every second (the tick) the policy turns the average into a decision. In
 * ondemand mode with no worker running, the loop also polls the listening socket and forks a
 * worker as soon as a connection waits in the backlog.
 */
#include "pm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sb.h"
#include "sysd.h"
#include "worker.h"

#define CRASH_WINDOW_US 10000000LL /* crash-loop detection window */
#define CRASH_LIMIT 5              /* unexpected exits in the window before throttling */
#define KILL_GRACE_US 2000000LL    /* after graceful_timeout_s, SIGKILL */
#define PM_SAMPLE_MS 100           /* busy threads are sampled this often */
#define PM_TICK_US 1000000LL       /* the policy decides once per tick */
#define PM_RECENT 3                /* samples of the "recent" load (the last 300 ms) */

/* ---------------------------------------------------------------------------------------- */
/* The policy: pure functions of config, time and load.                                       */

static int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/* Smallest integer >= x, ignoring float noise (x = 2.0000000001 counts as 2). */
static int ceil_int(double x)
{
	x -= 1e-9;
	int i = (int)x;
	return (double)i < x ? i + 1 : i;
}

int pm_scaler_init(struct pm_scaler *s, const struct srv_config *c, int current, int64_t now_s)
{
	memset(s, 0, sizeof(*s));
	s->window = c->pm_scale_down_window_s > 0 ? (int)c->pm_scale_down_window_s : 1;
	s->nsteps = (int)c->pm_scale_down_step;
	s->ring = malloc((size_t)s->window * sizeof(*s->ring));
	s->downs = malloc((size_t)s->nsteps * sizeof(*s->downs));
	if (!s->ring || !s->downs) {
		pm_scaler_fini(s);
		return -1;
	}
	for (int i = 0; i < s->window; i++)
		s->ring[i] = current;
	for (int i = 0; i < s->nsteps; i++)
		s->downs[i] = INT64_MIN;
	s->ring_s = now_s;
	return 0;
}

void pm_scaler_fini(struct pm_scaler *s)
{
	free(s->ring);
	free(s->downs);
	s->ring = NULL;
	s->downs = NULL;
}

int pm_recommend(const struct srv_config *c, int current, double busy, double total)
{
	double threads = (double)c->threads;
	double per_worker = threads * (double)c->pm_scale_up_busy_pct / 100.0;
	/* the fewest workers that keep busy threads at or below the threshold (HPA's
	 * ceil(current * utilisation / target) with utilisation = busy / (current * threads)) */
	int rec = ceil_int(busy / per_worker);
	/* and that leave min_spare threads idle */
	int spare = ceil_int((busy + (double)c->pm_min_spare_threads) / threads);
	if (spare > rec)
		rec = spare;
	/* every thread busy for the whole tick: the demand beyond is queued where we cannot see
	 * it, so grow by a full step */
	if (total > 0 && busy > total - 0.5 && current + (int)c->pm_scale_up_step > rec)
		rec = current + (int)c->pm_scale_up_step;
	return rec;
}

/* Removals still allowed at now_s: entries of downs older than the period. */
static int downs_allowed(const struct pm_scaler *s, const struct srv_config *c, int64_t now_s)
{
	int n = 0;
	for (int i = 0; i < s->nsteps; i++)
		if (s->downs[i] == INT64_MIN || s->downs[i] <= now_s - c->pm_scale_down_period_s)
			n++;
	return n;
}

void pm_scaler_tick(struct pm_scaler *s, const struct srv_config *c, int64_t now_s, int current,
		    double busy, double total, struct pm_decision *d)
{
	memset(d, 0, sizeof(*d));
	int lo = (int)c->workers_min, hi = (int)c->workers_max;
	d->rec_raw = pm_recommend(c, current, busy, total);
	d->rec = clampi(d->rec_raw, lo, hi);

	/* the ring holds the recommendation of each of the last `window` seconds. Seconds
	 * without a tick (a stalled master, a starved machine) were not observed: they keep the
	 * higher of the last recommendation and this one, so a stall can never shorten the
	 * stabilisation window (the load may have lasted through it) */
	if (now_s > s->ring_s) {
		int last = s->ring[s->ring_s % s->window];
		int unseen = last > d->rec ? last : d->rec;
		int64_t from =
			now_s - s->ring_s > s->window ? now_s - s->window + 1 : s->ring_s + 1;
		for (int64_t t = from; t < now_s; t++)
			s->ring[t % s->window] = unseen;
		s->ring[now_s % s->window] = d->rec;
		s->ring_s = now_s;
	} else {
		int *slot = &s->ring[now_s % s->window];
		if (d->rec > *slot)
			*slot = d->rec;
	}
	d->stable = 0;
	for (int i = 0; i < s->window; i++)
		if (s->ring[i] > d->stable)
			d->stable = s->ring[i];

	if (d->rec_raw > hi) {
		if (!s->max_warned) {
			s->max_warned = true;
			s->max_reached++;
			d->max_hit = true;
		}
	} else if (d->rec_raw < hi) {
		s->max_warned = false;
	}

	if (d->rec > current) {
		d->up = d->rec - current;
		if (d->up > c->pm_scale_up_step)
			d->up = (int)c->pm_scale_up_step;
		return;
	}
	if (c->pm != PM_DYNAMIC || d->stable >= current)
		return;
	double max_spare =
		c->pm_max_spare_threads ? (double)c->pm_max_spare_threads : (double)c->threads;
	if (total - busy <= max_spare)
		return;
	int want = current - (d->stable > lo ? d->stable : lo);
	int allowed = downs_allowed(s, c, now_s);
	d->down = want < allowed ? want : allowed;
	for (int k = 0; k < d->down; k++) {
		s->downs[s->downs_i] = now_s;
		s->downs_i = (s->downs_i + 1) % s->nsteps;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* The mechanics.                                                                              */

struct pm_worker {
	pid_t pid;          /* 0 = slot unused */
	int generation;     /* config generation */
	bool stopping;      /* told to stop (reload, scale down, shutdown) */
	int64_t stop_at_us; /* when told to stop */
};

struct pm {
	const struct srv_app *app;    /* application */
	struct srv_config *cfg;       /* current config (owned) */
	void *app_cfg;                /* current application config (owned) */
	int listen_fd;                /* shared socket */
	int ops_fd;                   /* shared ops socket (internal routes), -1 none */
	int sig_fd;                   /* signalfd of the master's signals */
	struct sb *sb;                /* scoreboard; slot i <-> w[i] */
	struct pm_worker *w;          /* sb->max_workers entries */
	int generation;               /* bumped by every reload */
	int target;                   /* workers of the current generation wanted */
	struct pm_scaler sc;          /* dynamic/ondemand policy state */
	double busy_sum, total_sum;   /* busy/total thread samples since the last tick */
	int nsamples;                 /* samples since the last tick */
	int recent_b[PM_RECENT];      /* the last PM_RECENT busy samples (ring) */
	int recent_t[PM_RECENT];      /* and their total threads */
	int recent_i;                 /* ring index */
	int64_t next_sample_us;       /* next busy sample */
	int64_t next_tick_us;         /* next policy decision */
	bool shutting_down;           /* SIGTERM/SIGINT received */
	int64_t shutdown_deadline_us; /* SIGKILL after this */
	int64_t crashes[CRASH_LIMIT]; /* times of recent unexpected exits (ring) */
	int crash_i;                  /* ring index */
	int64_t next_spawn_us;        /* throttled respawn time after a crash loop */
	bool throttled_logged;        /* crash-loop warning printed */
};

/* The target of a mode for a fresh start or a reload with `current` workers running. */
static int initial_target(const struct srv_config *c, int current)
{
	switch (c->pm) {
	case PM_DYNAMIC:
		return clampi(current >= 0 ? current : (int)c->workers, (int)c->workers_min,
			      (int)c->workers_max);
	case PM_ONDEMAND:
		return clampi(current >= 0 ? current : (int)c->workers_min, (int)c->workers_min,
			      (int)c->workers_max);
	default: return (int)c->workers;
	}
}

static void publish(struct pm *pm)
{
	struct sb_pm *p = &pm->sb->pm;
	atomic_store(&p->mode, pm->cfg->pm);
	atomic_store(&p->workers_min,
		     pm->cfg->pm == PM_STATIC ? (int)pm->cfg->workers : (int)pm->cfg->workers_min);
	atomic_store(&p->workers_max,
		     pm->cfg->pm == PM_STATIC ? (int)pm->cfg->workers : (int)pm->cfg->workers_max);
	atomic_store(&p->target, pm->target);
	atomic_store(&p->generation, pm->generation);
	atomic_store(&p->threads, (int)pm->cfg->threads);
	atomic_store(&p->throttled, pm->next_spawn_us != 0);
	atomic_store(&p->max_reached, pm->sc.max_reached);
}

static int spawn(struct pm *pm, int slot)
{
	sb_claim(pm->sb, slot, (int)pm->cfg->threads, pm->generation);
	pid_t pid = fork();
	if (pid < 0) {
		log_msg(LL_ERROR, NULL, "fork failed: %s", strerror(errno));
		sb_retire(pm->sb, slot);
		return -1;
	}
	if (pid == 0) {
		close(pm->sig_fd);
		sb_set_pid(pm->sb, slot, getpid());
		worker_run(pm->app, pm->cfg, pm->app_cfg, pm->listen_fd, pm->ops_fd, pm->sb, slot);
	}
	sb_set_pid(pm->sb, slot, pid);
	atomic_fetch_add(&pm->sb->pm.spawned, 1);
	pm->w[slot] = (struct pm_worker){.pid = pid, .generation = pm->generation};
	log_msg(LL_INFO, NULL, "started worker %d pid %d (generation %d)", slot, (int)pid,
		pm->generation);
	return 0;
}

static int live_current(const struct pm *pm)
{
	int n = 0;
	for (int i = 0; i < pm->sb->max_workers; i++)
		if (pm->w[i].pid && !pm->w[i].stopping && pm->w[i].generation == pm->generation)
			n++;
	return n;
}

static int live_total(const struct pm *pm)
{
	int n = 0;
	for (int i = 0; i < pm->sb->max_workers; i++)
		if (pm->w[i].pid)
			n++;
	return n;
}

static void stop_worker(struct pm *pm, int i, int sig)
{
	if (!pm->w[i].pid)
		return;
	if (!pm->w[i].stopping) {
		pm->w[i].stopping = true;
		pm->w[i].stop_at_us = now_us();
	}
	kill(pm->w[i].pid, sig);
}

static void record_crash(struct pm *pm)
{
	int64_t now = now_us();
	atomic_fetch_add(&pm->sb->pm.crashes, 1);
	pm->crashes[pm->crash_i] = now;
	pm->crash_i = (pm->crash_i + 1) % CRASH_LIMIT;
	int recent = 0;
	for (int i = 0; i < CRASH_LIMIT; i++)
		if (pm->crashes[i] && now - pm->crashes[i] < CRASH_WINDOW_US)
			recent++;
	if (recent >= CRASH_LIMIT) {
		pm->next_spawn_us = now + 1000000;
		if (!pm->throttled_logged) {
			log_msg(LL_ERROR, NULL,
				"workers are crashing in a loop (%d exits in %llds): respawning at "
				"most once per second",
				recent, CRASH_WINDOW_US / 1000000);
			pm->throttled_logged = true;
		}
	} else {
		pm->throttled_logged = false;
	}
}

static void reap(struct pm *pm)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int i;
		for (i = 0; i < pm->sb->max_workers; i++)
			if (pm->w[i].pid == pid)
				break;
		if (i == pm->sb->max_workers)
			continue;
		bool expected = pm->w[i].stopping;
		if (WIFSIGNALED(status)) {
			log_msg(expected ? LL_INFO : LL_WARN, NULL,
				"worker %d pid %d killed by signal %d (%s)", i, (int)pid,
				WTERMSIG(status), strsignal(WTERMSIG(status)));
			if (!expected)
				record_crash(pm);
		} else {
			int code = WEXITSTATUS(status);
			log_msg(code == 0 ? LL_INFO : LL_WARN, NULL,
				"worker %d pid %d exited with code %d%s", i, (int)pid, code,
				expected ? "" : (code == 0 ? " (recycled)" : ""));
			if (code != 0 && !expected)
				record_crash(pm);
		}
		/* its counters join the retired totals before the slot can be reused */
		sb_retire(pm->sb, i);
		pm->w[i] = (struct pm_worker){0};
	}
}

static void maintain(struct pm *pm)
{
	if (pm->shutting_down)
		return;
	int want = pm->target;
	int have = live_current(pm);
	while (have < want) {
		if (now_us() < pm->next_spawn_us)
			goto out;
		int slot = sb_free_slot(pm->sb);
		if (slot < 0) {
			log_msg(LL_WARN, NULL, "no free scoreboard slot for a new worker");
			goto out;
		}
		if (spawn(pm, slot) < 0)
			goto out;
		have++;
		if (pm->next_spawn_us)
			pm->next_spawn_us =
				now_us() + 1000000; /* still throttled: one per second */
	}
	/* too many (a reload lowered the count): stop extras, newest first */
	for (int i = pm->sb->max_workers - 1; i >= 0 && have > want; i--)
		if (pm->w[i].pid && !pm->w[i].stopping && pm->w[i].generation == pm->generation) {
			stop_worker(pm, i, SIGTERM);
			have--;
		}
out:
	if (pm->next_spawn_us && now_us() > pm->next_spawn_us + CRASH_WINDOW_US) {
		pm->next_spawn_us = 0;
		log_msg(LL_INFO, NULL, "crash loop over: respawning normally again");
	}
	publish(pm);
}

/* Busy threads of worker slot i right now. */
static int worker_busy(const struct pm *pm, int i)
{
	const struct sb_worker *w = &pm->sb->workers[i];
	int n = atomic_load(&w->nthreads), b = 0;
	for (int j = 0; j < n && j < SB_MAX_THREADS; j++)
		if (atomic_load(&w->threads[j].state) == SBT_BUSY)
			b++;
	return b;
}

/* The scale-down victim: among running workers of this generation, the one idle the longest
 * (no busy thread, oldest last request); if every worker is busy, the least busy. -1 if none. */
static int pick_victim(const struct pm *pm)
{
	int best = -1, best_busy = 0;
	int64_t best_active = 0;
	for (int i = 0; i < pm->sb->max_workers; i++) {
		if (!pm->w[i].pid || pm->w[i].stopping || pm->w[i].generation != pm->generation)
			continue;
		int b = worker_busy(pm, i);
		int64_t act = atomic_load(&pm->sb->workers[i].last_active_us);
		if (best < 0 || b < best_busy || (b == best_busy && act < best_active)) {
			best = i;
			best_busy = b;
			best_active = act;
		}
	}
	return best;
}

static void scale_down(struct pm *pm, int n, const char *why)
{
	for (int k = 0; k < n && pm->target > 0; k++) {
		int i = pick_victim(pm);
		pm->target--;
		if (i < 0)
			continue;
		log_msg(LL_INFO, NULL, "scaling down: stopping worker %d pid %d (%s), %d workers",
			i, (int)pm->w[i].pid, why, pm->target);
		stop_worker(pm, i, SIGTERM);
		atomic_fetch_add(&pm->sb->pm.scale_downs, 1);
	}
}

/* Once per tick: the policy for dynamic/ondemand, the idle timeout for ondemand. */
static void tick(struct pm *pm, int64_t now)
{
	double busy = pm->nsamples ? pm->busy_sum / pm->nsamples : 0;
	double total = pm->nsamples ? pm->total_sum / pm->nsamples : 0;
	pm->busy_sum = pm->total_sum = 0;
	pm->nsamples = 0;
	atomic_store(&pm->sb->pm.busy_x100, (int)(busy * 100 + 0.5));
	/* load that began late in the tick has a diluted average: the last 300 ms count when
	 * they are busier, so a burst is answered at the first tick after 300 ms of it, never
	 * more than 1.3 s after it began */
	double rb = 0, rt = 0;
	for (int i = 0; i < PM_RECENT; i++) {
		rb += pm->recent_b[i];
		rt += pm->recent_t[i];
	}
	rb /= PM_RECENT;
	rt /= PM_RECENT;
	if (rt > 0 && (total <= 0 || rb / rt > busy / total)) {
		busy = rb;
		total = rt;
	}
	if (pm->cfg->pm == PM_STATIC)
		return;
	const struct srv_config *c = pm->cfg;
	struct pm_decision d;
	pm_scaler_tick(&pm->sc, c, now / 1000000, pm->target, busy, total, &d);
	if (d.max_hit)
		log_msg(LL_WARN, NULL,
			"workers_max (%lld) reached: the load asks for %d workers (%.1f of %.0f "
			"threads busy); raise workers_max or add machines",
			(long long)c->workers_max, d.rec_raw, busy, total);
	if (d.up > 0 && !pm->shutting_down) {
		pm->target += d.up;
		atomic_fetch_add(&pm->sb->pm.scale_ups, (unsigned)d.up);
		log_msg(LL_INFO, NULL,
			"scaling up: +%d workers -> %d (%.1f of %.0f threads busy, threshold %lld%%)",
			d.up, pm->target, busy, total, (long long)c->pm_scale_up_busy_pct);
	} else if (d.down > 0) {
		char why[96];
		snprintf(why, sizeof(why), "load below the threshold for %llds",
			 (long long)c->pm_scale_down_window_s);
		scale_down(pm, d.down, why);
	}
	if (c->pm == PM_ONDEMAND) {
		for (int i = 0; i < pm->sb->max_workers && pm->target > c->workers_min; i++) {
			if (!pm->w[i].pid || pm->w[i].stopping ||
			    pm->w[i].generation != pm->generation || worker_busy(pm, i))
				continue;
			int64_t act = atomic_load(&pm->sb->workers[i].last_active_us);
			if (now - act < c->pm_idle_timeout_s * 1000000)
				continue;
			pm->target--;
			log_msg(LL_INFO, NULL,
				"stopping worker %d pid %d: idle for %llds, %d workers", i,
				(int)pm->w[i].pid, (long long)((now - act) / 1000000), pm->target);
			stop_worker(pm, i, SIGTERM);
			atomic_fetch_add(&pm->sb->pm.scale_downs, 1);
		}
	}
}

static void reload(struct pm *pm, int argc, char **argv)
{
	struct srv_config *ncfg = NULL;
	void *napp = NULL;
	char err[512];
	sysd_notify("RELOADING=1");
	if (pm->app->config_load(argc, argv, &ncfg, &napp, err, sizeof(err)) < 0 ||
	    srv_config_validate(ncfg, err, sizeof(err)) < 0) {
		log_msg(LL_ERROR, NULL, "reload refused, keeping the running configuration: %s",
			err);
		if (ncfg)
			pm->app->config_free(ncfg, napp);
		sysd_notify("READY=1");
		return;
	}
	if (strcmp(ncfg->listen ? ncfg->listen : "", pm->cfg->listen ? pm->cfg->listen : "") != 0)
		log_msg(LL_WARN, NULL, "listen changed: takes effect at the next restart");
	if (ncfg->workers_max != pm->cfg->workers_max)
		log_msg(LL_WARN, NULL, "workers_max changed: takes effect at the next restart");
	ncfg->workers_max = pm->cfg->workers_max;
	if (ncfg->workers > ncfg->workers_max)
		ncfg->workers = ncfg->workers_max;
	if (ncfg->workers_min > ncfg->workers_max)
		ncfg->workers_min = ncfg->workers_max;
	/* the scaled size survives a reload (within the new bounds); a changed policy starts
	 * a fresh window, so a reload never causes an immediate scale-down */
	int current = pm->cfg->pm == PM_STATIC || ncfg->pm == PM_STATIC ? -1 : pm->target;
	struct pm_scaler nsc;
	int ntarget = initial_target(ncfg, current);
	if (pm_scaler_init(&nsc, ncfg, ntarget, now_us() / 1000000) < 0) {
		log_msg(LL_ERROR, NULL, "reload refused: out of memory");
		pm->app->config_free(ncfg, napp);
		sysd_notify("READY=1");
		return;
	}
	nsc.max_reached = pm->sc.max_reached;
	pm_scaler_fini(&pm->sc);
	pm->sc = nsc;
	pm->target = ntarget;
	pm->app->config_free(pm->cfg, pm->app_cfg);
	pm->cfg = ncfg;
	pm->app_cfg = napp;
	log_set_level((enum log_level)ncfg->log_level);
	log_set_access(ncfg->access_log);
	log_set_rate(ncfg->log_rate_limit_per_s);
	pm->generation++;
	/* new generation first, then retire the old one: the socket never stops accepting */
	int nold = 0;
	int *old = calloc((size_t)pm->sb->max_workers, sizeof(*old));
	for (int i = 0; old && i < pm->sb->max_workers; i++)
		if (pm->w[i].pid && !pm->w[i].stopping)
			old[nold++] = i;
	maintain(pm);
	for (int j = 0; j < nold; j++)
		stop_worker(pm, old[j], SIGTERM);
	free(old);
	log_msg(LL_INFO, NULL, "configuration reloaded (generation %d, pm = %s, %d workers)",
		pm->generation, pm_mode_names[ncfg->pm], pm->target);
	sysd_notify("READY=1");
}

/* Handles one signal read from the signalfd. */
static void on_signal(struct pm *pm, int sig, int argc, char **argv)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		if (!pm->shutting_down) {
			log_msg(LL_INFO, NULL, "stopping: finishing in-flight requests");
			sysd_notify("STOPPING=1");
			pm->shutting_down = true;
			pm->shutdown_deadline_us =
				now_us() + pm->cfg->graceful_timeout_s * 1000000 + KILL_GRACE_US;
			for (int i = 0; i < pm->sb->max_workers; i++)
				stop_worker(pm, i, SIGTERM);
		}
		break;
	case SIGQUIT:
		log_msg(LL_WARN, NULL, "immediate stop");
		for (int i = 0; i < pm->sb->max_workers; i++)
			stop_worker(pm, i, SIGKILL);
		pm->shutting_down = true;
		pm->shutdown_deadline_us = now_us();
		break;
	case SIGHUP:
		if (!pm->shutting_down)
			reload(pm, argc, argv);
		break;
	default: break; /* SIGCHLD: reaped after every wake-up */
	}
}

/* The master's signals: blocked, then read from a signalfd (set gets them). */
static int signals_fd(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGHUP);
	sigprocmask(SIG_BLOCK, set, NULL);
	return signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Waits for a signal, the next busy sample or (watch: ondemand with no worker) a connection on
 * the listening sockets. Returns poll's count; pf gets the events. */
static int wait_events(struct pm *pm, bool watch, struct pollfd pf[3])
{
	pf[0] = (struct pollfd){.fd = pm->sig_fd, .events = POLLIN};
	pf[1] = (struct pollfd){.fd = pm->listen_fd, .events = POLLIN};
	pf[2] = (struct pollfd){.fd = pm->ops_fd, .events = POLLIN};
	int64_t wait_ms = (pm->next_sample_us - now_us() + 999) / 1000;
	if (wait_ms < 0)
		wait_ms = 0;
	if (wait_ms > PM_SAMPLE_MS)
		wait_ms = PM_SAMPLE_MS;
	int n = poll(pf, watch ? (pm->ops_fd >= 0 ? 3 : 2) : 1, (int)wait_ms);
	if (n < 0 && errno != EINTR) {
		log_msg(LL_ERROR, NULL, "poll: %s", strerror(errno));
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return n;
}

/* During shutdown: true once every worker is gone; past the deadline the rest are killed
 * (and *code becomes 1). */
static bool shutdown_done(struct pm *pm, int *code)
{
	if (live_total(pm) == 0)
		return true;
	if (now_us() > pm->shutdown_deadline_us) {
		for (int i = 0; i < pm->sb->max_workers; i++)
			if (pm->w[i].pid)
				kill(pm->w[i].pid, SIGKILL);
		*code = 1;
	}
	return false;
}

/* One busy/total sample of the current generation's threads, for the next tick's average and
 * the recent ring. */
static void sample(struct pm *pm, int64_t now)
{
	int b, t;
	sb_busy(pm->sb, pm->generation, &b, &t);
	pm->busy_sum += b;
	pm->total_sum += t;
	pm->nsamples++;
	pm->recent_b[pm->recent_i] = b;
	pm->recent_t[pm->recent_i] = t;
	pm->recent_i = (pm->recent_i + 1) % PM_RECENT;
	pm->next_sample_us = now + PM_SAMPLE_MS * 1000;
}

/* Workers that overstay a stop (reload, scale-down) are killed. */
static void kill_overstayers(struct pm *pm, int64_t now)
{
	for (int i = 0; i < pm->sb->max_workers; i++)
		if (pm->w[i].pid && pm->w[i].stopping &&
		    now - pm->w[i].stop_at_us >
			    pm->cfg->graceful_timeout_s * 1000000 + KILL_GRACE_US)
			kill(pm->w[i].pid, SIGKILL);
}

/* The master's loop until every worker is gone after a stop. Returns the exit code. */
static int loop(struct pm *pm, int argc, char **argv)
{
	int code = 0;
	for (;;) {
		/* ondemand with nobody accepting: wake up when a connection waits */
		bool watch = pm->cfg->pm == PM_ONDEMAND && !pm->shutting_down && pm->target == 0 &&
			     live_current(pm) == 0;
		struct pollfd pf[3];
		int n = wait_events(pm, watch, pf);
		if (n > 0 && (pf[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			while (read(pm->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				on_signal(pm, (int)si.ssi_signo, argc, argv);
		}
		reap(pm);
		if (pm->shutting_down) {
			if (shutdown_done(pm, &code))
				return code;
			continue;
		}
		if (watch && n > 0 &&
		    ((pf[1].revents | (pm->ops_fd >= 0 ? pf[2].revents : 0)) & POLLIN) &&
		    pm->target == 0) {
			pm->target = 1;
			atomic_fetch_add(&pm->sb->pm.scale_ups, 1);
			log_msg(LL_INFO, NULL,
				"ondemand: a connection is waiting, starting a worker");
		}
		int64_t now = now_us();
		if (now >= pm->next_sample_us)
			sample(pm, now);
		if (now >= pm->next_tick_us) {
			tick(pm, now);
			pm->next_tick_us += PM_TICK_US;
			if (pm->next_tick_us < now)
				pm->next_tick_us = now + PM_TICK_US; /* the master was stalled */
		}
		kill_overstayers(pm, now);
		maintain(pm);
	}
}

int pm_run(const struct srv_app *app, int argc, char **argv, struct srv_config *cfg, void *app_cfg,
	   int listen_fd, int ops_fd, struct sb *sb)
{
	int code = 1;
	struct pm pm = {
		.app = app,
		.cfg = cfg,
		.app_cfg = app_cfg,
		.listen_fd = listen_fd,
		.ops_fd = ops_fd,
		.sb = sb,
		.sig_fd = -1,
	};
	sigset_t set;
	int64_t start = now_us();
	pm.sig_fd = signals_fd(&set);
	pm.w = calloc((size_t)sb->max_workers, sizeof(*pm.w));
	pm.target = initial_target(cfg, -1);
	if (!pm.w || pm.sig_fd < 0 || pm_scaler_init(&pm.sc, cfg, pm.target, start / 1000000) < 0) {
		log_msg(LL_ERROR, NULL, "process manager setup failed: %s", strerror(errno));
		goto out;
	}
	atomic_store(&sb->pm.master_pid, (int)getpid());
	atomic_store(&sb->pm.start_us, start);
	atomic_store(&sb->pm.start_wall_us, wall_us());
	pm.next_sample_us = start;
	pm.next_tick_us = start + PM_TICK_US;

	maintain(&pm);
	sysd_notify("READY=1");
	log_msg(LL_INFO, NULL, "%s %s: master pid %d, pm = %s, %d workers x %lld threads",
		app->name, app->version, (int)getpid(), pm_mode_names[cfg->pm], pm.target,
		(long long)cfg->threads);
	code = loop(&pm, argc, argv);
	log_msg(LL_INFO, NULL, "stopped");
out:
	app->config_free(pm.cfg, pm.app_cfg);
	pm_scaler_fini(&pm.sc);
	if (pm.sig_fd >= 0)
		close(pm.sig_fd);
	free(pm.w);
	return code;
}
