/* dummy-verify.c - the time of a wrong password against a stored argon2id hash, and of the
 * dummy verification an unknown email gets (lib/pw.h pw_dummy_verify), as two distributions:
 * the login path must not reveal which emails exist. A benchmark, not a test: the unit test
 * (tests/unit/test-pw.c) asserts exactly that the dummy runs argon2id with the same
 * parameters; how long each takes on a given machine is for this program to report.
 *
 * usage: dummy-verify [runs] [m_kib] [t] [p]    (defaults 30, 19456, 2, 1: the server's)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pw.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-28s min %7.2f  p50 %7.2f  p90 %7.2f  max %7.2f ms\n", what, v[0], v[n / 2],
	       v[(n * 9) / 10], v[n - 1]);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 30;
	struct pw_params pp = {.m_kib = argc > 2 ? (uint32_t)atoi(argv[2]) : 19456,
			       .t = argc > 3 ? (uint32_t)atoi(argv[3]) : 2,
			       .p = argc > 4 ? (uint32_t)atoi(argv[4]) : 1};
	if (runs < 2)
		runs = 2;
	char hash[PW_HASH_MAX];
	if (pw_hash(&pp, "the right password", hash, sizeof hash) != 0) {
		fprintf(stderr, "dummy-verify: pw_hash failed (bad parameters?)\n");
		return 1;
	}
	double *real = calloc((size_t)runs, sizeof(double));
	double *dummy = calloc((size_t)runs, sizeof(double));
	if (!real || !dummy)
		return 1;
	/* interleaved, so that a change of machine load hits both series alike */
	for (int i = 0; i < runs; i++) {
		double t0 = now_ms();
		(void)pw_verify(hash, "a wrong password");
		double t1 = now_ms();
		pw_dummy_verify(&pp);
		double t2 = now_ms();
		real[i] = t1 - t0;
		dummy[i] = t2 - t1;
	}
	printf("argon2id m=%u KiB t=%u p=%u, %d runs each\n", pp.m_kib, pp.t, pp.p, runs);
	report("wrong password (verify)", real, runs);
	report("unknown email (dummy)", dummy, runs);
	printf("median ratio dummy/verify: %.3f\n", dummy[runs / 2] / real[runs / 2]);
	free(real);
	free(dummy);
	return 0;
}
