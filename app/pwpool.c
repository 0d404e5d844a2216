/* pwpool.c - the bounded password-hashing threads (pwpool.h).
 *
 * argon2id needs argon2_memory_kib of memory per hash. Run on the request threads, every hash
 * would get fresh memory from the kernel (glibc maps a block that large and unmaps it on free),
 * and the page faults of those 19 MiB cost about half as much CPU again as the hash itself. So
 * each worker runs argon2_max_concurrent hashing threads that take password jobs from a queue:
 * the bound on concurrent hashes (memory stays at that many blocks during a login storm; a
 * request waits for a thread rather than failing), and, with glibc told to serve such blocks
 * from the threads' own heaps (pwpool_new) and not to trim them while hashing goes on, memory
 * that stays mapped while they work. A second after the last hash the threads give it back,
 * so an idle worker is as small as before.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/log.h"
#include "pwpool.h"
#include "wstate.h"

/* glibc gives a thread heap's free top back to the kernel on free() only beyond the trim
 * threshold: high while hashing goes on (the argon2 block stays mapped from one hash to the
 * next), the default again once hashing has been idle for a second. */
#define PW_TRIM_WARM (64 * 1024 * 1024)
#define PW_TRIM_COLD (128 * 1024)
#define PW_IDLE_US 1000000

struct pwpool {
	pthread_mutex_t mu;          /* guards head, tail, stop, warm */
	pthread_cond_t work;         /* a job was queued, or stop */
	pthread_cond_t done;         /* a job finished */
	struct pwpool_job *head;     /* queued password jobs, oldest first */
	struct pwpool_job *tail;     /* last queued */
	bool stop;                   /* the hashing threads leave */
	bool warm;                   /* trim threshold raised while hashing goes on */
	pthread_t *threads;          /* the hashing threads */
	int nthreads;                /* started */
	struct pw_params params;     /* argon2id parameters of new hashes */
	atomic_int_fast64_t last_us; /* monotonic end of the last password job */
};

static void pw_exec(const struct pw_params *pp, struct pwpool_job *j)
{
	j->fresh[0] = '\0';
	if (!j->verify) {
		j->result = PW_OK;
		if (pw_hash(pp, j->new_pw, j->fresh, sizeof(j->fresh)) < 0)
			j->fresh[0] = '\0';
		return;
	}
	if (!j->hash) {
		pw_dummy_verify(pp);
		j->result = PW_MISMATCH;
		return;
	}
	j->result = pw_verify(j->hash, j->pw);
	if (j->result != PW_OK)
		return;
	const char *again = j->new_pw;
	if (!again && j->rehash && pw_needs_rehash(j->hash, pp))
		again = j->pw;
	if (again && pw_hash(pp, again, j->fresh, sizeof(j->fresh)) < 0)
		j->fresh[0] = '\0';
}

/* Waits (p->mu held) for a job or stop; while idle for a second, lowers the trim threshold
 * again and, when this thread's heap may hold a retained argon2 block (*dirty), trims it. */
static void wait_for_job(struct pwpool *p, bool *dirty)
{
	while (!p->head && !p->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&p->work, &p->mu, &ts);
		if (p->head || now_us() - atomic_load(&p->last_us) < PW_IDLE_US)
			continue;
		if (p->warm) {
			mallopt(M_TRIM_THRESHOLD, PW_TRIM_COLD);
			p->warm = false;
		}
		if (*dirty) {
			/* a free() in this thread's heap trims it, now that the threshold is low
			 * again: the idle worker returns to its usual size */
			pthread_mutex_unlock(&p->mu);
			void *volatile m = malloc(2 * PW_TRIM_COLD);
			free(m);
			pthread_mutex_lock(&p->mu);
			*dirty = false;
		}
	}
}

static void *thread_main(void *arg)
{
	struct pwpool *p = arg;
	bool dirty = false; /* this thread's heap may hold a retained argon2 block */
	pthread_mutex_lock(&p->mu);
	for (;;) {
		wait_for_job(p, &dirty);
		if (!p->head)
			break; /* stopping, queue drained */
		struct pwpool_job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		if (!p->warm) {
			mallopt(M_TRIM_THRESHOLD, PW_TRIM_WARM);
			p->warm = true;
		}
		pthread_mutex_unlock(&p->mu);
		pw_exec(&p->params, j);
		atomic_store(&p->last_us, now_us());
		dirty = true;
		pthread_mutex_lock(&p->mu);
		j->done = true;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct pwpool *pwpool_new(const struct pw_params *pp, int nthreads)
{
	struct pwpool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->threads = calloc(nthreads > 0 ? (size_t)nthreads : 1, sizeof(pthread_t));
	if (!p->threads) {
		free(p);
		return NULL;
	}
	p->params = *pp;
	/* blocks up to 32 MiB (argon2id at the default 19 MiB) come from the heap of the thread
	 * that asks rather than from mmap(2) */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, PW_TRIM_COLD);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, thread_main, p) != 0) {
			log_msg(LL_WARN, NULL, "password hashing thread %d did not start", i);
			break;
		}
		p->nthreads++;
	}
	return p;
}

void pwpool_free(struct pwpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}

void pwpool_run(struct req *r, struct pwpool_job *job)
{
	struct pwpool *p = wstate_get(r)->pw;
	job->next = NULL;
	job->done = false;
	if (p->nthreads == 0) {
		pw_exec(&p->params, job);
		return;
	}
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->work);
	while (!job->done)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}
