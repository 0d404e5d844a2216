/* test-kv.c - unit tests of lib/kv.c: URL parsing, and the outage behaviour that keeps a dead
 * or hung Redis from slowing requests down: after one failure every call returns NULL at once
 * (no connect, no timeout) until the backoff expires, then one probe decides; the backoff
 * doubles while Redis stays down. Dead Redis = a closed port; hung Redis = a socket this test
 * binds and listens on but never accepts or answers. A real redis-server (started by the test
 * on a private port when the binary exists) checks commands, recovery and restarts. */
#include <arpa/inet.h>
#include <check.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"
#include "log.h"

#define CONNECT_MS 200
#define COMMAND_MS 200

static int64_t mono_ms(void)
{
	return now_us() / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A TCP port on 127.0.0.1 that nothing listens on: bind, read the port, close. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	return ntohs(sa.sin_port);
}

/* A listening socket that never accepts: connect succeeds (the kernel completes the handshake
 * into the backlog) and then nothing ever answers, like a SIGSTOPped Redis. */
static int hung_listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void setup(void)
{
	log_set_level(LL_ERROR);
	signal(SIGPIPE, SIG_IGN); /* as in a worker: a write to a dead Redis must not kill us */
}

START_TEST(test_url_check)
{
	ck_assert_int_eq(kv_url_check("redis://127.0.0.1:6379/0"), 0);
	ck_assert_int_eq(kv_url_check("redis://localhost"), 0);
	ck_assert_int_eq(kv_url_check("redis://localhost/3"), 0);
	ck_assert_int_eq(kv_url_check("unix:/run/redis.sock"), 0);
	ck_assert_int_eq(kv_url_check("unix:///run/redis.sock"), 0);
	ck_assert_int_eq(kv_url_check("http://127.0.0.1:6379"), -1);
	ck_assert_int_eq(kv_url_check("redis://:6379"), -1);
	ck_assert_int_eq(kv_url_check("redis://h:0"), -1);
	ck_assert_int_eq(kv_url_check("redis://h:65536"), -1);
	ck_assert_int_eq(kv_url_check("redis://h:12x"), -1);
	ck_assert_int_eq(kv_url_check("redis://h:1/x"), -1);
	ck_assert_int_eq(kv_url_check("redis://user:pw@h:1/0"), 0);
	ck_assert_int_eq(kv_url_check("redis://:pw@h:1/0"), 0);
	ck_assert_int_eq(kv_url_check("redis://:p%40ss%3A@h"), 0);
	ck_assert_int_eq(kv_url_check("unix://:pw@/run/redis.sock"), 0);
	ck_assert_int_eq(kv_url_check("unix://app:pw@/run/redis.sock"), 0);
	ck_assert_int_eq(kv_url_check("redis://user@h:1/0"), -1); /* no password */
	ck_assert_int_eq(kv_url_check("redis://:@h:1/0"), -1);    /* empty password */
	ck_assert_int_eq(kv_url_check("redis://:p%4@h:1/0"), -1); /* broken escape */
	ck_assert_int_eq(kv_url_check("rediss://:pw@h:1/0"), -1);
	ck_assert_ptr_null(kv_url_problem("redis://:pw@h:1/0"));
	ck_assert_ptr_nonnull(strstr(kv_url_problem("rediss://:pw@h:1/0"), "stunnel"));
	ck_assert_int_eq(kv_url_check("unix:relative.sock"), -1);
	ck_assert_int_eq(kv_url_check(""), -1);
	ck_assert_int_eq(kv_url_check(NULL), -1);
	struct kv_shared sh;
	kv_shared_init(&sh);
	ck_assert_ptr_null(kv_new("nope://", CONNECT_MS, COMMAND_MS, &sh));
	kv_free(NULL);
}
END_TEST

/*
 * Calls kv_cmd n times during a backoff: every call must be NULL at once. "At once" is < 5 ms;
 * a loaded machine (make -j check, sanitizers) may preempt a few calls, so up to 1 % of them
 * may take longer, but none may come near a connect or command timeout (which is what a
 * broken backoff costs: >= 200 ms here).
 */
static void assert_skipped_fast(struct kv *k, int n)
{
	int slow = 0;
	int64_t worst = 0;
	for (int i = 0; i < n; i++) {
		int64_t t0 = now_us();
		redisReply *r = kv_cmd(k, "PING");
		int64_t dt = now_us() - t0;
		ck_assert_ptr_null(r);
		if (dt >= 5000)
			slow++;
		if (dt > worst)
			worst = dt;
	}
	ck_assert_msg(slow <= n / 100, "%d of %d calls during the backoff took >= 5 ms", slow, n);
	ck_assert_msg(worst < 100000, "a call during the backoff took %lld ms",
		      (long long)(worst / 1000));
}

START_TEST(test_backoff_closed_port)
{
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", closed_port());
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	ck_assert_ptr_nonnull(k);
	ck_assert(kv_up(k));

	ck_assert_ptr_null(kv_cmd(k, "PING"));
	ck_assert(!kv_up(k));
	ck_assert_uint_eq(atomic_load(&sh.failures), 1);

	/* during the backoff: NULL at once, nothing tried */
	assert_skipped_fast(k, 200);
	ck_assert_uint_eq(atomic_load(&sh.failures), 1);
	ck_assert_uint_eq(atomic_load(&sh.skipped), 200);

	/* after the first backoff (250 ms) one probe runs, fails, and the backoff doubles */
	sleep_ms(300);
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	ck_assert_uint_eq(atomic_load(&sh.failures), 2);
	ck_assert_int_eq(atomic_load(&sh.backoff_us), 500000);
	sleep_ms(300); /* still inside the 500 ms backoff */
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	ck_assert_uint_eq(atomic_load(&sh.failures), 2);
	kv_free(k);
}
END_TEST

/* redis_url empty (or absent): no Redis. A handle exists, never connects, and every command
 * fails at once as while Redis is down; the worker's state is down from the start without a
 * failure counted (so no "redis unavailable" line), and forcing or probing changes nothing. */
START_TEST(test_no_url_means_no_redis)
{
	const char *urls[] = {"", NULL};
	for (int i = 0; i < 2; i++) {
		struct kv_shared sh;
		kv_shared_init(&sh);
		struct kv *k = kv_new(urls[i], CONNECT_MS, COMMAND_MS, &sh);
		ck_assert_ptr_nonnull(k);
		ck_assert(!kv_configured(k));
		ck_assert(!kv_up(k));
		assert_skipped_fast(k, 200);
		ck_assert_ptr_null(kv_cmd_force(k, "PING"));
		kv_set_prober(k);
		ck_assert_ptr_null(kv_cmd(k, "PING"));
		struct kv_argv a = {0};
		kv_argv_add(&a, "PING", 4);
		redisReply *out[1] = {NULL};
		ck_assert_int_eq(kv_pipeline(k, 1, &a, out), -1);
		ck_assert_ptr_null(out[0]);
		ck_assert_ptr_null(kv_run(k, &a, true));
		ck_assert_uint_eq(atomic_load(&sh.failures), 0);
		ck_assert_uint_ge(atomic_load(&sh.skipped), 200);
		ck_assert(!atomic_load(&sh.up));
		kv_free(k);
	}
	ck_assert(!kv_configured(NULL));
	struct kv_shared sh;
	kv_shared_init(&sh);
	struct kv *k = kv_new("redis://127.0.0.1:1/0", CONNECT_MS, COMMAND_MS, &sh);
	ck_assert(kv_configured(k));
	ck_assert(kv_up(k));
	kv_free(k);
}
END_TEST

START_TEST(test_backoff_hung_server)
{
	int port;
	int lfd = hung_listener(&port);
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);

	/* the first call pays one command timeout (not two: a timeout is not retried) */
	int64_t t0 = mono_ms();
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	int64_t first = mono_ms() - t0;
	ck_assert_msg(first >= COMMAND_MS - 20, "first call returned after %lld ms: no timeout?",
		      (long long)first);
	ck_assert_msg(first < 2 * COMMAND_MS, "first call took %lld ms", (long long)first);
	ck_assert(!kv_up(k));

	/* then nothing waits until the backoff expires */
	assert_skipped_fast(k, 100);
	ck_assert_uint_eq(atomic_load(&sh.failures), 1);
	ck_assert_uint_eq(atomic_load(&sh.skipped), 100);

	/* the probe after the backoff pays the timeout again, once */
	sleep_ms(300);
	t0 = mono_ms();
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	ck_assert_int_ge(mono_ms() - t0, COMMAND_MS - 20);
	ck_assert_uint_eq(atomic_load(&sh.failures), 2);
	assert_skipped_fast(k, 100);
	ck_assert_uint_eq(atomic_load(&sh.failures), 2);
	kv_free(k);
	close(lfd);
}
END_TEST

START_TEST(test_backoff_shared_between_handles)
{
	/* two threads' handles of one worker: one failure makes both skip */
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", closed_port());
	struct kv *a = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	struct kv *b = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	ck_assert_ptr_null(kv_cmd(a, "PING"));
	ck_assert(!kv_up(b));
	ck_assert_ptr_null(kv_cmd(b, "PING"));
	ck_assert_uint_eq(atomic_load(&sh.failures), 1);
	ck_assert_uint_eq(atomic_load(&sh.skipped), 1);
	kv_free(a);
	kv_free(b);
}
END_TEST

START_TEST(test_backoff_cap)
{
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", closed_port());
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	/* force many probes by expiring the backoff by hand */
	for (int i = 0; i < 20; i++) {
		atomic_store(&sh.down_until_us, 1);
		ck_assert_ptr_null(kv_cmd(k, "PING"));
	}
	ck_assert_int_eq(atomic_load(&sh.backoff_us), 5000000);
	kv_free(k);
}
END_TEST

START_TEST(test_prober_alone_probes)
{
	/* with a prober, ordinary handles never probe, even after the backoff expired: no request
	 * pays a timeout; the prober tries whenever it is called */
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", closed_port());
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	struct kv *p = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	kv_set_prober(p);
	ck_assert_ptr_null(kv_cmd(p, "PING"));
	ck_assert(!kv_up(k));
	uint64_t f = atomic_load(&sh.failures);
	sleep_ms(300); /* past the first backoff */
	assert_skipped_fast(k, 50);
	ck_assert_uint_eq(atomic_load(&sh.failures), f);
	/* the prober ignores the backoff */
	ck_assert_ptr_null(kv_cmd(p, "PING"));
	ck_assert_uint_eq(atomic_load(&sh.failures), f + 1);
	ck_assert_ptr_null(kv_cmd(p, "PING"));
	ck_assert_uint_eq(atomic_load(&sh.failures), f + 2);
	kv_free(k);
	kv_free(p);
}
END_TEST

START_TEST(test_force_ignores_backoff)
{
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", closed_port());
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	uint64_t f = atomic_load(&sh.failures);
	ck_assert_ptr_null(kv_cmd(k, "PING")); /* skipped */
	ck_assert_uint_eq(atomic_load(&sh.failures), f);
	ck_assert_ptr_null(kv_cmd_force(k, "PING")); /* tried */
	ck_assert_uint_eq(atomic_load(&sh.failures), f + 1);
	kv_free(k);
}
END_TEST

/* ------------------------------------------------------------------ a real redis-server */

static pid_t redis_pid = -1;
static int redis_port;

/* redis-server on PATH (its path is kept for redis_start). */
static char redis_bin[256];

static bool have_redis(void)
{
	if (redis_bin[0])
		return true;
	const char *path = getenv("PATH");
	char dirs[1024];
	snprintf(dirs, sizeof(dirs), "%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(redis_bin, sizeof(redis_bin), "%s/redis-server", d);
		if (access(redis_bin, X_OK) == 0)
			return true;
	}
	redis_bin[0] = '\0';
	return false;
}

/* Starts redis-server with extra arguments (NULL-terminated, may be NULL); waits until url
 * (NULL: the plain one) answers PING. */
static void redis_start_with(const char *const *extra, const char *ping_url)
{
	if (redis_port == 0)
		redis_port = closed_port();
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", redis_port);
	redis_pid = fork();
	ck_assert_int_ge(redis_pid, 0);
	if (redis_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		/* no persistence: it never writes a file, so /tmp as its directory is fine even
		 * when a failed test leaves no chance to clean up */
		const char *argv[32] = {"redis-server", "--port", portstr, "--bind",
					"127.0.0.1",    "--save", "",      "--appendonly",
					"no",           "--dir",  "/tmp"};
		int n = 11;
		for (int i = 0; extra && extra[i] && n < 31; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		execv(redis_bin, (char *const *)argv);
		_exit(127);
	}
	/* wait until it answers */
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[256];
	if (ping_url)
		snprintf(url, sizeof(url), "%s", ping_url);
	else
		snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
	for (int i = 0; i < 100; i++) {
		struct kv *k = kv_new(url, 100, 100, &sh);
		redisReply *r = kv_cmd(k, "PING");
		kv_free(k);
		if (r) {
			bool pong = r->type == REDIS_REPLY_STATUS;
			freeReplyObject(r);
			if (pong)
				return;
		}
		kv_shared_init(&sh);
		sleep_ms(50);
	}
	ck_abort_msg("redis-server did not start on port %d", redis_port);
}

static void redis_start(void)
{
	redis_start_with(NULL, NULL);
}

static void redis_stop(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGCONT);
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
		redis_pid = -1;
	}
}

static void redis_setup(void)
{
	setup();
	redis_port = 0;
}

static void redis_teardown(void)
{
	redis_stop();
}

START_TEST(test_real_commands)
{
	if (!have_redis())
		return; /* nothing to test against */
	redis_start();
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/2", redis_port);
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	redisReply *r = kv_cmd(k, "SET %s %s", "test-kv-key", "v1");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	const char *argv[] = {"GET", "test-kv-key"};
	const size_t lens[] = {3, 11};
	r = kv_cmdargv(k, 2, argv, lens);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	ck_assert_str_eq(r->str, "v1");
	freeReplyObject(r);
	/* the database number of the URL was selected: db 0 does not have the key */
	char url0[64];
	snprintf(url0, sizeof(url0), "redis://127.0.0.1:%d/0", redis_port);
	struct kv *k0 = kv_new(url0, CONNECT_MS, COMMAND_MS, &sh);
	r = kv_cmd(k0, "EXISTS %s", "test-kv-key");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->integer, 0);
	freeReplyObject(r);
	/* an error reply is a reply, not an outage */
	r = kv_cmd(k, "INCR %s", "test-kv-key");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	ck_assert(kv_up(k));
	ck_assert_uint_eq(atomic_load(&sh.failures), 0);
	kv_free(k);
	kv_free(k0);
}
END_TEST

START_TEST(test_real_restart_and_recovery)
{
	if (!have_redis())
		return;
	redis_start();
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	redisReply *r = kv_cmd(k, "PING");
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);

	/* Redis restarts between two commands: the stale connection is replaced transparently */
	redis_stop();
	redis_start();
	r = kv_cmd(k, "PING");
	ck_assert_msg(r != NULL, "a restart between commands was not retried on a new connection");
	freeReplyObject(r);
	ck_assert_uint_eq(atomic_load(&sh.failures), 0);

	/* Redis down: NULL, then skipped */
	redis_stop();
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	ck_assert(!kv_up(k));
	/* back up, but still inside the backoff: skipped. The backoff is set here, not waited
	 * for: a restart on a busy machine may take longer than the backoff itself */
	redis_start();
	atomic_store(&sh.down_until_us, now_us() + 60 * 1000000LL);
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	/* the backoff over: the first call reconnects and clears the down state */
	atomic_store(&sh.down_until_us, now_us() - 1);
	r = kv_cmd(k, "PING");
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);
	ck_assert(kv_up(k));
	ck_assert_int_eq(atomic_load(&sh.backoff_us), 0);
	ck_assert_int_eq(atomic_load(&sh.down_until_us), 0);
	kv_free(k);
}
END_TEST

START_TEST(test_real_prober_recovery)
{
	/* Redis back: ordinary handles keep failing fast until the prober has seen it answer */
	if (!have_redis())
		return;
	redis_start();
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	struct kv *p = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	kv_set_prober(p);
	redis_stop();
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	ck_assert(!kv_up(k));
	redis_start();
	sleep_ms(300);
	ck_assert_ptr_null(kv_cmd(k, "PING")); /* not probed by a request */
	redisReply *r = kv_cmd(p, "PING");
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);
	ck_assert(kv_up(k));
	r = kv_cmd(k, "PING");
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);
	kv_free(k);
	kv_free(p);
}
END_TEST

START_TEST(test_real_pipeline_and_script)
{
	if (!have_redis())
		return;
	redis_start();
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	static struct kv_script inc = {.body = "return redis.call('INCRBY', KEYS[1], ARGV[1])"};
	ck_assert_int_eq(kv_script_init(&inc), 0);
	ck_assert_uint_eq(strlen(inc.sha), 40);
	struct kv_argv cmds[3];
	memset(cmds, 0, sizeof(cmds));
	/* a script Redis has never seen: NOSCRIPT, retried as EVAL inside the pipeline */
	kv_argv_script(&cmds[0], &inc);
	kv_argv_add(&cmds[0], "1", 1);
	kv_argv_add(&cmds[0], "ctr", 3);
	kv_argv_add(&cmds[0], "5", 1);
	kv_argv_add(&cmds[1], "GET", 3);
	kv_argv_add(&cmds[1], "ctr", 3);
	kv_argv_add(&cmds[2], "NOSUCHCOMMAND", 13);
	redisReply *out[3] = {NULL, NULL, NULL};
	ck_assert_int_eq(kv_pipeline(k, 3, cmds, out), 0);
	ck_assert_ptr_nonnull(out[0]);
	ck_assert_int_eq(out[0]->type, REDIS_REPLY_INTEGER);
	ck_assert_int_eq(out[0]->integer, 5);
	/* the GET ran in the same round trip as the script's first (NOSCRIPT) try */
	ck_assert_ptr_nonnull(out[1]);
	ck_assert(out[1]->type == REDIS_REPLY_NIL || out[1]->type == REDIS_REPLY_STRING);
	ck_assert_ptr_nonnull(out[2]);
	ck_assert_int_eq(out[2]->type, REDIS_REPLY_ERROR); /* an error reply is still a reply */
	for (int i = 0; i < 3; i++)
		freeReplyObject(out[i]);
	redisReply *g = kv_cmd(k, "GET ctr");
	ck_assert_ptr_nonnull(g);
	ck_assert_str_eq(g->str, "5"); /* the script ran exactly once */
	freeReplyObject(g);
	/* now cached by Redis: EVALSHA works directly */
	redisReply *r = kv_run(k, &cmds[0], false);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->integer, 10);
	freeReplyObject(r);
	/* Redis down: -1 and every out[i] NULL */
	redis_stop();
	out[0] = out[1] = (redisReply *)1;
	ck_assert_int_eq(kv_pipeline(k, 2, cmds, out), -1);
	ck_assert_ptr_null(out[0]);
	ck_assert_ptr_null(out[1]);
	kv_free(k);
}
END_TEST

START_TEST(test_real_hung_then_resumed)
{
	if (!have_redis())
		return;
	redis_start();
	struct kv_shared sh;
	kv_shared_init(&sh);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	redisReply *r = kv_cmd(k, "PING");
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);
	/* SIGSTOP: an open connection that stops answering */
	kill(redis_pid, SIGSTOP);
	int64_t t0 = mono_ms();
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	int64_t dt = mono_ms() - t0;
	ck_assert_msg(dt < 2 * COMMAND_MS + 50, "hung Redis cost %lld ms", (long long)dt);
	assert_skipped_fast(k, 100);
	kill(redis_pid, SIGCONT);
	sleep_ms(300);
	r = kv_cmd(k, "PING");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	ck_assert(kv_up(k));
	kv_free(k);
}
END_TEST

/* redis_url with a password, and with a Redis 6 ACL user: AUTH on connect and again after
 * Redis closed the connection; wrong credentials are a dead Redis, never a crash. */
START_TEST(test_auth_password_and_acl_user)
{
	static const char *const extra[] = {"--requirepass", "s3cr:et@x", "--user", "app", "on",
					    ">app-pw",       "~*",        "+@all",  NULL};
	char url[256];
	redis_port = closed_port();
	snprintf(url, sizeof(url), "redis://:s3cr%%3Aet%%40x@127.0.0.1:%d/0", redis_port);
	redis_start_with(extra, url);
	struct kv_shared sh;
	kv_shared_init(&sh);

	/* no credentials: Redis answers NOAUTH */
	char plain[64];
	snprintf(plain, sizeof(plain), "redis://127.0.0.1:%d/0", redis_port);
	struct kv *k = kv_new(plain, CONNECT_MS, COMMAND_MS, &sh);
	redisReply *r = kv_cmd(k, "SET %s %s", "auth-key", "v");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
	ck_assert_ptr_nonnull(strstr(r->str, "NOAUTH"));
	freeReplyObject(r);
	kv_free(k);

	/* the default user's password (percent-encoded ':' and '@') */
	k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	r = kv_cmd(k, "SET %s %s", "auth-key", "v1");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	/* Redis drops every client: the next command reconnects and authenticates again */
	redisReply *kill = kv_cmd(k, "CLIENT KILL TYPE normal");
	if (kill)
		freeReplyObject(kill);
	kv_shared_init(&sh);
	r = kv_cmd(k, "GET %s", "auth-key");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	ck_assert_str_eq(r->str, "v1");
	freeReplyObject(r);
	kv_free(k);

	/* an ACL user */
	snprintf(url, sizeof(url), "redis://app:app-pw@127.0.0.1:%d/0", redis_port);
	k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	r = kv_cmd(k, "GET %s", "auth-key");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->str, "v1");
	freeReplyObject(r);
	kv_free(k);

	/* a wrong password: no reply, as if Redis were down */
	kv_shared_init(&sh);
	snprintf(url, sizeof(url), "redis://app:wrong@127.0.0.1:%d/0", redis_port);
	k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	ck_assert_ptr_null(kv_cmd(k, "GET %s", "auth-key"));
	ck_assert(!kv_up(k));
	kv_free(k);
	redis_stop();
}
END_TEST

/* Runs a shell command; true when it exits 0. */
static bool run_sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0;
}

/* TLS the way a sysadmin adds it while hiredis has none: a TLS-only redis-server with a
 * throwaway certificate, a local stunnel client tunnel in front of it, and redis_url pointing
 * at the tunnel (README, operations). */
START_TEST(test_tls_through_stunnel)
{
	char dir[] = "/tmp/test-kv-tls-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert(run_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
			 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
			 "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
			 dir, dir));
	int tls_port = closed_port(), tunnel_port = closed_port();
	char conf[256], tls_arg[16], cert[128], key[128];
	snprintf(tls_arg, sizeof(tls_arg), "%d", tls_port);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(conf, sizeof(conf), "%s/stunnel.conf", dir);
	FILE *f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"foreground = yes\npid =\n[redis]\nclient = yes\naccept = 127.0.0.1:%d\n"
		"connect = 127.0.0.1:%d\nCAfile = %s\nverifyPeer = yes\ncheckHost = localhost\n",
		tunnel_port, tls_port, cert);
	fclose(f);

	pid_t tunnel = fork();
	ck_assert_int_ge(tunnel, 0);
	if (tunnel == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("stunnel4", "stunnel4", conf, (char *)NULL);
		execlp("stunnel", "stunnel", conf, (char *)NULL);
		_exit(127);
	}
	/* a TLS-only server: no plain port */
	static const char *extra[16];
	int n = 0;
	extra[n++] = "--port";
	extra[n++] = "0";
	extra[n++] = "--tls-port";
	extra[n++] = tls_arg;
	extra[n++] = "--tls-cert-file";
	extra[n++] = cert;
	extra[n++] = "--tls-key-file";
	extra[n++] = key;
	extra[n++] = "--tls-ca-cert-file";
	extra[n++] = cert;
	extra[n++] = "--tls-auth-clients";
	extra[n++] = "no";
	extra[n] = NULL;
	char url[128];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", tunnel_port);
	redis_port = tls_port; /* the server's "--port" is overridden to 0 by extra */
	redis_start_with(extra, url);

	struct kv_shared sh;
	kv_shared_init(&sh);
	struct kv *k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	redisReply *r = kv_cmd(k, "SET %s %s", "tls-key", "through-the-tunnel");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	r = kv_cmd(k, "GET %s", "tls-key");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->str, "through-the-tunnel");
	freeReplyObject(r);
	kv_free(k);

	/* plaintext straight to the TLS port gets nothing */
	kv_shared_init(&sh);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", tls_port);
	k = kv_new(url, CONNECT_MS, COMMAND_MS, &sh);
	ck_assert_ptr_null(kv_cmd(k, "PING"));
	kv_free(k);

	redis_stop();
	kill(tunnel, SIGKILL);
	waitpid(tunnel, NULL, 0);
	run_sh("rm -rf %s", dir);
}
END_TEST

static Suite *kv_suite(void)
{
	Suite *s = suite_create("kv");
	TCase *tc = tcase_create("outage");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_url_check);
	tcase_add_test(tc, test_backoff_closed_port);
	tcase_add_test(tc, test_no_url_means_no_redis);
	tcase_add_test(tc, test_backoff_hung_server);
	tcase_add_test(tc, test_backoff_shared_between_handles);
	tcase_add_test(tc, test_backoff_cap);
	tcase_add_test(tc, test_prober_alone_probes);
	tcase_add_test(tc, test_force_ignores_backoff);
	suite_add_tcase(s, tc);
	TCase *tr = tcase_create("redis-server");
	tcase_add_checked_fixture(tr, redis_setup, redis_teardown);
	tcase_set_timeout(tr, 30);
	tcase_add_test(tr, test_real_commands);
	tcase_add_test(tr, test_real_restart_and_recovery);
	tcase_add_test(tr, test_real_hung_then_resumed);
	tcase_add_test(tr, test_real_prober_recovery);
	tcase_add_test(tr, test_real_pipeline_and_script);
	tcase_add_test(tr, test_auth_password_and_acl_user);
	tcase_add_test(tr, test_tls_through_stunnel);
	suite_add_tcase(s, tr);
	return s;
}

int main(void)
{
	if (!have_redis()) {
		fprintf(stderr, "test-kv: SKIP: no redis-server on PATH\n");
		return 77; /* counted as a failure by tests/run-suites */
	}
	SRunner *sr = srunner_create(kv_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
