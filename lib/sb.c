/* sb.c - scoreboard in shared anonymous memory (see sb.h for the layout and the seqlock). */
#include "sb.h"

#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"

const char *const sb_wstate_names[SBW__MAX + 1] = {
	[SBW_FREE] = "free",         [SBW_STARTING] = "starting", [SBW_RUNNING] = "running",
	[SBW_STOPPING] = "stopping", [SBW__MAX] = NULL,
};
const char *const sb_tstate_names[SBT__MAX + 1] = {
	[SBT_IDLE] = "idle",
	[SBT_BUSY] = "busy",
	[SBT_DONE] = "done",
	[SBT__MAX] = NULL,
};

/* 1 ms .. 10 s, roughly 1-2.5-5 per decade: enough resolution for p50/p95/p99 of an API whose
 * target is p99 < 100 ms, and the tail up to the 10 s a user would give up at. */
const int64_t sb_bucket_le_us[SB_BUCKETS - 1] = {
	1000,   2500,   5000,    10000,   25000,   50000,    100000,
	250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static size_t sb_size(int max_workers)
{
	return sizeof(struct sb) + (size_t)max_workers * sizeof(struct sb_worker);
}

struct sb *sb_create(int max_workers)
{
	if (max_workers < 1)
		return NULL;
	size_t n = sb_size(max_workers);
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* anonymous mappings are zero-filled: every atomic starts at 0, states at FREE */
	struct sb *sb = p;
	sb->max_workers = max_workers;
	return sb;
}

void sb_destroy(struct sb *sb)
{
	if (sb)
		munmap(sb, sb_size(sb->max_workers));
}

int sb_free_slot(struct sb *sb)
{
	for (int i = 0; i < sb->max_workers; i++)
		if (atomic_load(&sb->workers[i].state) == SBW_FREE)
			return i;
	return -1;
}

/* Seqlock writer side: only the master writes, so no writer-writer exclusion is needed. */
static void seq_begin(struct sb *sb)
{
	atomic_fetch_add(&sb->seq, 1); /* odd: readers retry */
}

static void seq_end(struct sb *sb)
{
	atomic_fetch_add(&sb->seq, 1); /* even again */
}

void sb_claim(struct sb *sb, int i, int nthreads, int generation)
{
	struct sb_worker *w = &sb->workers[i];
	seq_begin(sb);
	atomic_store(&w->pid, 0);
	atomic_store(&w->started_us, now_us());
	atomic_store(&w->last_active_us, now_us());
	atomic_store(&w->requests, 0);
	atomic_store(&w->generation, generation);
	atomic_store(&w->nthreads, nthreads);
	atomic_store(&w->g.db_size, 0);
	atomic_store(&w->g.db_overflow, 0);
	atomic_store(&w->g.db_open, 0);
	atomic_store(&w->g.db_in_use, 0);
	atomic_store(&w->g.db_idle, 0);
	atomic_store(&w->g.db_waiting, 0);
	atomic_store(&w->g.kv_up, -1);
	for (int t = 0; t < SB_MAX_THREADS; t++) {
		atomic_store(&w->threads[t].state, SBT_IDLE);
		atomic_store(&w->threads[t].route, -1);
		atomic_store(&w->threads[t].start_us, 0);
		atomic_store(&w->threads[t].requests, 0);
		atomic_store(&w->threads[t].client, 0);
	}
	for (int k = 0; k < SB_NCOUNTERS; k++)
		atomic_store_explicit(&w->c[k], 0, memory_order_relaxed);
	atomic_store(&w->state, SBW_STARTING);
	seq_end(sb);
}

void sb_set_pid(struct sb *sb, int i, pid_t pid)
{
	atomic_store(&sb->workers[i].pid, (int)pid);
}

void sb_retire(struct sb *sb, int i)
{
	struct sb_worker *w = &sb->workers[i];
	seq_begin(sb);
	for (int k = 0; k < SB_NCOUNTERS; k++) {
		uint64_t v = atomic_load_explicit(&w->c[k], memory_order_relaxed);
		if (v)
			atomic_fetch_add_explicit(&sb->retired[k], v, memory_order_relaxed);
	}
	atomic_store(&w->pid, 0);
	atomic_store(&w->state, SBW_FREE);
	seq_end(sb);
}

void sb_busy(struct sb *sb, int gen, int *busy, int *total)
{
	int b = 0, t = 0;
	for (int i = 0; i < sb->max_workers; i++) {
		struct sb_worker *w = &sb->workers[i];
		int st = atomic_load(&w->state);
		if (st != SBW_RUNNING && st != SBW_STARTING)
			continue;
		if (gen >= 0 && atomic_load(&w->generation) != gen)
			continue;
		int n = atomic_load(&w->nthreads);
		for (int j = 0; j < n && j < SB_MAX_THREADS; j++) {
			t++;
			if (atomic_load(&w->threads[j].state) == SBT_BUSY)
				b++;
		}
	}
	*busy = b;
	*total = t;
}

int sb_client_enter(struct sb *sb, int w, int t, uint64_t client)
{
	atomic_store(&sb->workers[w].threads[t].client, client);
	int n = 0;
	for (int i = 0; i < sb->max_workers; i++) {
		struct sb_worker *wk = &sb->workers[i];
		int st = atomic_load(&wk->state);
		if (st != SBW_RUNNING && st != SBW_STARTING && st != SBW_STOPPING)
			continue;
		int nt = atomic_load(&wk->nthreads);
		for (int j = 0; j < nt && j < SB_MAX_THREADS; j++)
			if (atomic_load(&wk->threads[j].client) == client &&
			    atomic_load(&wk->threads[j].state) == SBT_BUSY)
				n++;
	}
	return n;
}

void sb_client_clear(struct sb *sb, int w, int t)
{
	atomic_store(&sb->workers[w].threads[t].client, 0);
}

void sb_snapshot(struct sb *sb, struct sb_totals *t)
{
	/* A fold takes microseconds; a reader that keeps losing the race (a storm of reaps)
	 * gives up after a bounded number of tries and returns its last, nearly right, sum. */
	for (int attempt = 0; attempt < 100; attempt++) {
		unsigned s1 = atomic_load(&sb->seq);
		if (s1 & 1u)
			continue;
		for (int k = 0; k < SB_NCOUNTERS; k++)
			t->c[k] = atomic_load_explicit(&sb->retired[k], memory_order_relaxed);
		for (int i = 0; i < sb->max_workers; i++) {
			struct sb_worker *w = &sb->workers[i];
			if (atomic_load(&w->state) == SBW_FREE)
				continue;
			for (int k = 0; k < SB_NCOUNTERS; k++)
				t->c[k] += atomic_load_explicit(&w->c[k], memory_order_relaxed);
		}
		atomic_thread_fence(memory_order_acquire); /* the loads above before the re-check */
		if (atomic_load(&sb->seq) == s1)
			return;
	}
}

int sb_status_class(int status)
{
	if (status < 100 || status > 599)
		return 4;
	return status / 100 - 1;
}

int sb_bucket(int64_t dur_us)
{
	int b = 0;
	while (b < SB_BUCKETS - 1 && dur_us > sb_bucket_le_us[b])
		b++;
	return b;
}

void sb_record(struct sb_worker *w, int route, int status, int64_t dur_us)
{
	if (route < 0 || route > SB_ROUTE_NONE)
		route = SB_ROUTE_NONE;
	if (dur_us < 0)
		dur_us = 0;
	atomic_uint_fast64_t *row = &w->c[SBC_ROUTE(route)];
	atomic_fetch_add_explicit(&row[SBR_STATUS(sb_status_class(status))], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&row[SBR_BUCKET(sb_bucket(dur_us))], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&row[SBR_SUM_US], (uint64_t)dur_us, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->c[SBC_REQUESTS], 1, memory_order_relaxed);
	if (status == 429)
		atomic_fetch_add_explicit(&w->c[SBC_RATE_LIMITED], 1, memory_order_relaxed);
	atomic_store_explicit(&w->last_active_us, now_us(), memory_order_relaxed);
}
