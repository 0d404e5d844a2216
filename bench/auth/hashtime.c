/* hashtime.c - the time of one argon2id hash at given parameters, for bench/auth/run.sh: the
 * login rate a machine can sustain is at most cores / that time, whatever the server does.
 *
 *   hashtime M_KIB T P [N]     prints "ms_per_hash <median> <min> <max>" over N hashes (9)
 *   hashtime M_KIB T P N THREADS
 *                              prints "hashes_per_s <rate>": THREADS threads hashing N each at
 *                              once, each with fresh memory per hash like a server's threads
 *
 * Build: cc -O2 -o hashtime hashtime.c -largon2 -lpthread
 */
#include <argon2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct job {
	unsigned m, t, p; /* parameters */
	int n;            /* hashes to compute */
};

static void *hash_many(void *arg)
{
	const struct job *j = arg;
	static const unsigned char salt[16] = "bench-salt-0123";
	unsigned char out[32];
	for (int i = 0; i < j->n; i++)
		argon2id_hash_raw(j->t, j->m, j->p, "password123", 11, salt, sizeof(salt), out,
				  sizeof(out));
	return NULL;
}

/* THREADS threads at once: the rate the machine sustains with every CPU hashing. */
static int parallel(unsigned m, unsigned t, unsigned p, int n, int threads)
{
	pthread_t th[64];
	struct job j = {m, t, p, n};
	if (threads < 1 || threads > 64)
		return 2;
	double t0 = now_ms();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, hash_many, &j);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	printf("hashes_per_s %.1f\n", threads * n * 1000.0 / (now_ms() - t0));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: hashtime M_KIB T P [N]\n");
		return 2;
	}
	unsigned m = (unsigned)strtoul(argv[1], NULL, 10);
	unsigned t = (unsigned)strtoul(argv[2], NULL, 10);
	unsigned p = (unsigned)strtoul(argv[3], NULL, 10);
	int n = argc > 4 ? atoi(argv[4]) : 9;
	if (n < 1 || n > 1000)
		n = 9;
	if (argc > 5)
		return parallel(m, t, p, n, atoi(argv[5]));
	static const char pw[] = "password123";
	static const unsigned char salt[16] = "bench-salt-0123";
	unsigned char out[32];
	double *ms = calloc((size_t)n, sizeof(*ms));
	if (!ms)
		return 1;
	/* one warm-up: page faults of the memory area */
	if (argon2id_hash_raw(t, m, p, pw, sizeof(pw) - 1, salt, sizeof(salt), out, sizeof(out)) !=
	    ARGON2_OK) {
		fprintf(stderr, "hashtime: argon2id failed for m=%u t=%u p=%u\n", m, t, p);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		argon2id_hash_raw(t, m, p, pw, sizeof(pw) - 1, salt, sizeof(salt), out,
				  sizeof(out));
		ms[i] = now_ms() - t0;
	}
	qsort(ms, (size_t)n, sizeof(*ms), cmp);
	printf("ms_per_hash %.2f %.2f %.2f\n", ms[n / 2], ms[0], ms[n - 1]);
	free(ms);
	return 0;
}
