/* hello.c - the smallest libfcgi responder: the baseline bench/platform.sh compares
 * ideaforge-api's trivial route (/health/live) against.
 *
 *   hello unix:/path/hello.sock WORKERS THREADS
 *
 * Same process shape as ideaforge-api (WORKERS processes x THREADS threads, every thread in an
 * FCGX_Accept_r loop on one shared socket) and the same answer as /health/live, byte for byte,
 * but nothing else: no parameter parsing, routing, arena, logging, scoreboard or middleware.
 * The difference between the two is what the platform costs per request.
 *
 * Build: cc -O2 -o hello hello.c -lfcgi -lpthread
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char response[] = "Status: 200 OK\r\n"
			       "Content-Type: application/json\r\n"
			       "Content-Length: 18\r\n"
			       "\r\n"
			       "{\"status\":\"alive\"}";

static int listen_fd = -1;

static void *accept_loop(void *arg)
{
	(void)arg;
	FCGX_Request r;
	FCGX_InitRequest(&r, listen_fd, 0);
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_PutStr(response, (int)sizeof(response) - 1, r.out);
		FCGX_Finish_r(&r);
	}
	return NULL;
}

/* One worker: THREADS accept threads; returns only if they all fail. */
static void worker(int nthreads)
{
	pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
	if (!t)
		exit(1);
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, accept_loop, NULL) != 0) {
			perror("hello: pthread_create");
			exit(1);
		}
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	free(t);
}

int main(int argc, char **argv)
{
	if (argc != 4 || strncmp(argv[1], "unix:", 5) != 0) {
		fprintf(stderr, "usage: hello unix:/path/hello.sock WORKERS THREADS\n");
		return 2;
	}
	const char *path = argv[1] + 5;
	int nworkers = atoi(argv[2]), nthreads = atoi(argv[3]);
	if (nworkers < 1 || nthreads < 1) {
		fprintf(stderr, "hello: WORKERS and THREADS must be positive\n");
		return 2;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "hello: FCGX_Init failed\n");
		return 1;
	}
	unlink(path);
	listen_fd = FCGX_OpenSocket(path, 1024);
	if (listen_fd < 0) {
		fprintf(stderr, "hello: cannot listen on %s\n", path);
		return 1;
	}
	chmod(path, 0660);
	/* FCGX_Init installs a SIGTERM handler (libfcgi's "shutdown pending" flag) that leaves a
	 * thread blocked in accept() running: restore plain termination */
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);

	for (int i = 0; i < nworkers; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("hello: fork");
			return 1;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* die with the parent */
			worker(nthreads);
			_exit(1);
		}
	}
	/* the parent only waits; SIGTERM ends it and, through PDEATHSIG, the workers */
	while (wait(NULL) > 0)
		;
	return 0;
}
