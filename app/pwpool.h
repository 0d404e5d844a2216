/* pwpool.h - the worker's bounded password-hashing threads (app/pwpool.c).
 *
 * argon2id (RFC 9106) needs argon2_memory_kib of memory per hash; a worker runs
 * argon2_max_concurrent hashing threads that take jobs from a queue, so a login storm queues
 * on CPU instead of exhausting memory, and the threads' heaps keep the argon2 block mapped
 * while hashing goes on (given back a second after the last hash).
 */
#ifndef IF_APP_PWPOOL_H
#define IF_APP_PWPOOL_H

#include <stdbool.h>

#include "../lib/pw.h"
#include "app.h"

/* One password computation, run by pwpool_run() on the worker's hashing threads. */
struct pwpool_job {
	bool verify;             /* check pw against hash first (else: only hash new_pw) */
	const char *hash;        /* stored hash; NULL with verify: a dummy verification (unknown
				  * user, same cost) whose result is PW_MISMATCH */
	const char *pw;          /* the password to check */
	const char *new_pw;      /* when set: hashed after a successful check (or alone) */
	bool rehash;             /* after a successful check: hash pw again if the stored hash
				  * has other parameters (or is bcrypt) */
	int result;              /* out: enum pw_result of the check (PW_OK when !verify) */
	char fresh[PW_HASH_MAX]; /* out: the new PHC string, "" when none was made or it failed */
	bool done;               /* internal */
	struct pwpool_job *next; /* internal */
};

struct pwpool;

/* Starts nthreads hashing threads with the argon2id parameters pp (copied), and tells glibc
 * to serve argon2-sized blocks from the threads' own heaps (process-wide mallopt). A thread
 * that does not start is logged; with none, jobs run on the caller's thread. Returns the pool
 * (owned; pwpool_free), or NULL when out of memory. */
struct pwpool *pwpool_new(const struct pw_params *pp, int nthreads);

/* Lets queued jobs finish, joins the threads and frees the pool. Accepts NULL. */
void pwpool_free(struct pwpool *p);

/* Runs job on one of the worker's hashing threads, waiting for a free one as long as needed
 * (a login storm queues instead of failing; memory stays at that many argon2 blocks), with the
 * configured argon2id parameters. The request's database connection should be released first
 * (db_req_done). job is borrowed; its out fields are set on return. */
void pwpool_run(struct req *r, struct pwpool_job *job);

#endif
