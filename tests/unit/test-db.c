/* test-db.c - unit tests of lib/db.c against a real PostgreSQL: the pool's size, overflow,
 * checkout timeout (RC_UNAVAILABLE, never a hang), waiting for a returned connection,
 * recycling by age, pre-ping replacing a connection the server killed, recovery without
 * pre-ping, an unreachable server, and the request-level helpers (db_exec/db_value, SQLSTATE
 * mapping to result codes with client-safe messages, statement timeout, rollback at the end
 * of a request).
 *
 * The server: IDEAFORGE_TEST_PG (a libpq conninfo), else the test stack's cluster
 * (IDEAFORGE_PGHOST, exported by scripts/dev test), else, when running as root with
 * PostgreSQL installed, a private cluster this program initialises in /tmp and removes at the
 * end. Without any of them the tests report a skip on stderr and pass. */
#include <check.h>
#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "db.h"
#include "ctx.h"
#include "log.h"

static char conninfo[512];
static char own_dir[64]; /* private cluster, "" when none */
static char pg_bin[256];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fprintf(stderr, "test-db: command failed: %s\n", cmd);
}

/* Starts a throwaway cluster (root only: PostgreSQL runs as the postgres user). */
static bool own_cluster(void)
{
	if (geteuid() != 0)
		return false;
	glob_t g;
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0)
		return false;
	snprintf(pg_bin, sizeof(pg_bin), "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	*strrchr(pg_bin, '/') = '\0';
	snprintf(own_dir, sizeof(own_dir), "/tmp/test-db-XXXXXX");
	if (!mkdtemp(own_dir)) {
		own_dir[0] = '\0';
		return false;
	}
	sh("chown postgres:postgres %s && chmod 700 %s", own_dir, own_dir);
	sh("cd / && runuser -u postgres -- %s/initdb -D %s/data --auth=trust -U postgres "
	   "-E UTF8 --locale=C.UTF-8 >/dev/null 2>&1",
	   pg_bin, own_dir);
	sh("cd / && runuser -u postgres -- %s/pg_ctl -D %s/data -l %s/log -w -t 30 "
	   "-o \"-c listen_addresses='' -k %s -c fsync=off\" start >/dev/null 2>&1",
	   pg_bin, own_dir, own_dir, own_dir);
	snprintf(conninfo, sizeof(conninfo), "host=%s dbname=postgres user=postgres", own_dir);
	return true;
}

static void suite_setup(void)
{
	const char *ci = getenv("IDEAFORGE_TEST_PG");
	const char *host = getenv("IDEAFORGE_PGHOST");
	if (ci && *ci)
		snprintf(conninfo, sizeof(conninfo), "%s", ci);
	else if (host && *host && access(host, F_OK) == 0)
		snprintf(conninfo, sizeof(conninfo), "host=%s dbname=ideaforge user=ideaforge",
			 host);
	else if (!own_cluster())
		conninfo[0] = '\0';
	if (conninfo[0]) {
		PGconn *c = PQconnectdb(conninfo);
		if (PQstatus(c) != CONNECTION_OK) {
			fprintf(stderr, "test-db: cannot connect to %s: %s", conninfo,
				PQerrorMessage(c));
			conninfo[0] = '\0';
		}
		PQfinish(c);
	}
	if (!conninfo[0])
		fprintf(stderr, "test-db: SKIP: no PostgreSQL (set IDEAFORGE_TEST_PG or "
				"IDEAFORGE_PGHOST, or run as root with PostgreSQL installed)\n");
}

static void suite_teardown(void)
{
	if (!own_dir[0])
		return;
	sh("cd / && runuser -u postgres -- %s/pg_ctl -D %s/data -w -t 30 stop -m immediate "
	   ">/dev/null 2>&1",
	   pg_bin, own_dir);
	sh("rm -rf %s", own_dir);
}

#define NEED_PG()                 \
	do {                      \
		if (!conninfo[0]) \
			return;   \
	} while (0)

static void setup(void)
{
	log_set_level(LL__MAX);
}

static struct db_pool *pool(int size, int overflow, int64_t timeout_ms, int64_t recycle_s,
			    bool pre_ping, int64_t stmt_ms)
{
	struct db_pool_opts o = {
		.conninfo = conninfo,
		.size = size,
		.overflow = overflow,
		.timeout_ms = timeout_ms,
		.recycle_s = recycle_s,
		.pre_ping = pre_ping,
		.statement_timeout_ms = stmt_ms,
		.application_name = "test-db",
	};
	struct db_pool *p = db_pool_new(&o);
	ck_assert_ptr_nonnull(p);
	return p;
}

static struct db_conn *get(struct db_pool *p)
{
	struct db_conn *c = NULL;
	char err[256] = "";
	int rc = db_checkout(p, &c, err, sizeof(err));
	ck_assert_msg(rc == RC_OK, "checkout failed: %s", err);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* The server process id behind a connection: tells whether it is the same connection. */
static int backend_pid(struct db_conn *c)
{
	PGresult *r = PQexec(db_pg(c), "SELECT pg_backend_pid()");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	int pid = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return pid;
}

static int64_t ms_since(int64_t t0_us)
{
	return (now_us() - t0_us) / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ the pool */

START_TEST(test_reuse_idle_connection)
{
	NEED_PG();
	struct db_pool *p = pool(2, 0, 1000, 0, false, 0);
	struct db_conn *c = get(p);
	int pid = backend_pid(c);
	db_release(p, c);
	c = get(p);
	ck_assert_int_eq(backend_pid(c), pid);
	struct db_stats s;
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.open, 1);
	ck_assert_int_eq(s.in_use, 1);
	ck_assert_uint_eq(s.checkouts, 2);
	db_release(p, c);
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.in_use, 0);
	ck_assert_int_eq(s.idle, 1);
	db_pool_free(p);
}
END_TEST

START_TEST(test_checkout_timeout)
{
	NEED_PG();
	struct db_pool *p = pool(1, 0, 300, 0, false, 0);
	struct db_conn *c = get(p);
	struct db_conn *c2 = (struct db_conn *)1;
	char err[256] = "";
	int64_t t0 = now_us();
	int rc = db_checkout(p, &c2, err, sizeof(err));
	int64_t waited = ms_since(t0);
	ck_assert_int_eq(rc, RC_UNAVAILABLE);
	ck_assert_ptr_null(c2);
	ck_assert_msg(waited >= 280 && waited < 1000, "timed out after %lld ms", (long long)waited);
	ck_assert_msg(strstr(err, "timed out") != NULL, "%s", err);
	struct db_stats s;
	db_pool_stats(p, &s);
	ck_assert_uint_eq(s.timeouts, 1);
	ck_assert_uint_eq(s.waits, 1);
	ck_assert_int_eq(s.waiting, 0);
	db_release(p, c);
	/* the pool is usable again */
	c = get(p);
	db_release(p, c);
	db_pool_free(p);
}
END_TEST

START_TEST(test_overflow)
{
	NEED_PG();
	struct db_pool *p = pool(1, 1, 200, 0, false, 0);
	struct db_conn *a = get(p), *b = get(p); /* the second is an overflow connection */
	struct db_conn *x = NULL;
	char err[256];
	ck_assert_int_eq(db_checkout(p, &x, err, sizeof(err)), RC_UNAVAILABLE);
	struct db_stats s;
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.open, 2);
	ck_assert_int_eq(s.in_use, 2);
	int pid_b = backend_pid(b);
	db_release(p, b);
	/* above size: closed, not kept */
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.open, 1);
	ck_assert_int_eq(s.idle, 0);
	db_release(p, a);
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.open, 1);
	ck_assert_int_eq(s.idle, 1);
	/* the overflow backend is really gone from the server */
	struct db_conn *c = get(p);
	char q[128];
	snprintf(q, sizeof(q), "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid_b);
	PGresult *r = PQexec(db_pg(c), q);
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	/* the backend may take a moment to exit after the client closed the socket */
	for (int i = 0; i < 50 && strcmp(PQgetvalue(r, 0, 0), "0") != 0; i++) {
		PQclear(r);
		sleep_ms(20);
		r = PQexec(db_pg(c), q);
	}
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	db_release(p, c);
	db_pool_free(p);
}
END_TEST

struct waiter {
	struct db_pool *p;
	int rc;
	int64_t waited_ms;
	struct db_conn *c;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	char err[256];
	int64_t t0 = now_us();
	w->rc = db_checkout(w->p, &w->c, err, sizeof(err));
	w->waited_ms = ms_since(t0);
	return NULL;
}

START_TEST(test_waiter_gets_returned_connection)
{
	NEED_PG();
	struct db_pool *p = pool(1, 0, 3000, 0, false, 0);
	struct db_conn *c = get(p);
	int pid = backend_pid(c);
	struct waiter w = {.p = p};
	pthread_t th;
	pthread_create(&th, NULL, wait_thread, &w);
	sleep_ms(150);
	struct db_stats s;
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.waiting, 1);
	db_release(p, c);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, RC_OK);
	ck_assert_msg(w.waited_ms >= 100 && w.waited_ms < 1000, "waited %lld ms",
		      (long long)w.waited_ms);
	ck_assert_int_eq(backend_pid(w.c), pid);
	db_release(p, w.c);
	db_pool_free(p);
}
END_TEST

START_TEST(test_many_threads_bounded)
{
	/* 8 threads, 2 connections: every checkout is served, open never exceeds the cap */
	NEED_PG();
	struct db_pool *p = pool(2, 0, 5000, 0, false, 0);
	enum { T = 8 };
	struct waiter w[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		w[i] = (struct waiter){.p = p};
		pthread_create(&th[i], NULL, wait_thread, &w[i]);
	}
	int served = 0;
	while (served < T) {
		struct db_stats s;
		db_pool_stats(p, &s);
		ck_assert_int_le(s.open, 2);
		for (int i = 0; i < T; i++)
			if (w[i].c && w[i].rc == RC_OK) {
				pthread_join(th[i], NULL);
				db_release(p, w[i].c);
				w[i].c = NULL;
				w[i].rc = -1;
				served++;
			}
		sleep_ms(5);
	}
	struct db_stats s;
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.open, 2);
	ck_assert_uint_eq(s.checkouts, T);
	ck_assert_uint_eq(s.timeouts, 0);
	db_pool_free(p);
}
END_TEST

START_TEST(test_recycle)
{
	NEED_PG();
	struct db_pool *p = pool(1, 0, 1000, 1, false, 0);
	struct db_conn *c = get(p);
	int pid = backend_pid(c);
	db_release(p, c);
	c = get(p);
	ck_assert_int_eq(backend_pid(c), pid); /* young: kept */
	db_release(p, c);
	sleep_ms(1100);
	c = get(p);
	ck_assert_int_ne(backend_pid(c), pid); /* older than recycle_s: replaced */
	db_release(p, c);
	struct db_stats s;
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.open, 1);
	db_pool_free(p);
}
END_TEST

/* Terminates a backend from another connection, as a PostgreSQL restart would. */
static void kill_backend(int pid)
{
	PGconn *k = PQconnectdb(conninfo);
	ck_assert_int_eq(PQstatus(k), CONNECTION_OK);
	char q[96];
	snprintf(q, sizeof(q), "SELECT pg_terminate_backend(%d)", pid);
	PGresult *r = PQexec(k, q);
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	PQfinish(k);
	sleep_ms(100);
}

START_TEST(test_pre_ping_replaces_dead_connection)
{
	NEED_PG();
	struct db_pool *p = pool(1, 0, 1000, 0, true, 0);
	struct db_conn *c = get(p);
	int pid = backend_pid(c);
	db_release(p, c);
	kill_backend(pid);
	sleep_ms(1000); /* idle past the pre-ping threshold */
	c = get(p);
	/* a live connection, not the dead one */
	int pid2 = backend_pid(c);
	ck_assert_int_ne(pid2, pid);
	db_release(p, c);
	db_pool_free(p);
}
END_TEST

/* The work-level helpers run on a context (lib/ctx.h): no request needed. */
struct freq {
	struct ctx r; /* the context of one unit of work */
};

static void freq_init(struct freq *f, struct db_pool *p, struct arena *a)
{
	ctx_init(&f->r, a, p, "test");
}

static void freq_done(struct freq *f)
{
	db_done(&f->r);
	arena_reset(f->r.a);
}

START_TEST(test_recovers_without_pre_ping)
{
	/* without pre-ping the dead connection is handed out once: that request gets 503, the
	 * broken connection is dropped at release and the next request works */
	NEED_PG();
	struct db_pool *p = pool(1, 0, 1000, 0, false, 0);
	struct arena *a = arena_new(4096);
	struct freq f;
	freq_init(&f, p, a);
	const char *pid = db_value(&f.r, NULL, "SELECT pg_backend_pid()::text", 0, NULL);
	ck_assert_ptr_nonnull(pid);
	int oldpid = atoi(pid);
	freq_done(&f);
	kill_backend(oldpid);

	freq_init(&f, p, a);
	ck_assert_ptr_null(db_value(&f.r, NULL, "SELECT 1", 0, NULL));
	ck_assert_int_eq(f.r.rc, RC_UNAVAILABLE);
	ck_assert_str_eq(f.r.detail, "Database unavailable");
	freq_done(&f);

	freq_init(&f, p, a);
	bool found = false;
	const char *v = db_value(&f.r, &found, "SELECT pg_backend_pid()::text", 0, NULL);
	ck_assert_ptr_nonnull(v);
	ck_assert(found);
	ck_assert_int_ne(atoi(v), oldpid);
	freq_done(&f);
	struct db_stats s;
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.open, 1);
	ck_assert_int_eq(s.in_use, 0);
	arena_free(a);
	db_pool_free(p);
}
END_TEST

START_TEST(test_unreachable_server)
{
	/* every checkout fails fast with RC_UNAVAILABLE, and failed connects leak no slot (a
	 * leak would turn the later failures into checkout timeouts) */
	struct db_pool_opts o = {
		.conninfo = "host=/nonexistent-test-db dbname=x user=x",
		.size = 1,
		.overflow = 0,
		.timeout_ms = 2000,
	};
	struct db_pool *p = db_pool_new(&o);
	for (int i = 0; i < 5; i++) {
		struct db_conn *c = (struct db_conn *)1;
		char err[256] = "";
		int64_t t0 = now_us();
		ck_assert_int_eq(db_checkout(p, &c, err, sizeof(err)), RC_UNAVAILABLE);
		ck_assert_ptr_null(c);
		ck_assert_msg(ms_since(t0) < 500, "checkout %d took %lld ms", i,
			      (long long)ms_since(t0));
		ck_assert_msg(strstr(err, "connect") != NULL, "%s", err);
		ck_assert_ptr_null(strchr(err, '\n'));
	}
	struct db_stats s;
	db_pool_stats(p, &s);
	ck_assert_int_eq(s.open, 0);
	ck_assert_int_eq(s.in_use, 0);
	ck_assert_uint_eq(s.connect_errors, 5);
	ck_assert_uint_eq(s.timeouts, 0);
	db_pool_free(p);
}
END_TEST

START_TEST(test_request_unreachable_is_503)
{
	struct db_pool_opts o = {
		.conninfo = "host=/nonexistent-test-db dbname=x", .size = 1, .timeout_ms = 500};
	struct db_pool *p = db_pool_new(&o);
	struct arena *a = arena_new(4096);
	struct freq f;
	freq_init(&f, p, a);
	ck_assert_ptr_null(db_exec(&f.r, "SELECT 1", 0, NULL));
	ck_assert_int_eq(f.r.rc, RC_UNAVAILABLE);
	ck_assert_str_eq(f.r.detail, "Database unavailable");
	ck_assert_ptr_null(f.r.db);
	freq_done(&f);
	arena_free(a);
	db_pool_free(p);
}
END_TEST

/* ------------------------------------------------------------------ request level */

static struct db_pool *P;
static struct arena *A;
static struct freq F;

static void req_setup(void)
{
	setup();
	if (!conninfo[0])
		return;
	P = pool(1, 0, 2000, 0, false, 500);
	A = arena_new(4096);
	freq_init(&F, P, A);
}

static void req_teardown(void)
{
	if (!conninfo[0])
		return;
	freq_done(&F);
	arena_free(A);
	db_pool_free(P);
}

START_TEST(test_exec_params)
{
	NEED_PG();
	const char *params[] = {"it's; DROP TABLE x --", NULL};
	PGresult *r = db_exec(&F.r, "SELECT $1::text AS a, $2::text AS b, 42 AS n", 2, params);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(db_get(r, 0, "a"), "it's; DROP TABLE x --");
	ck_assert_ptr_null(db_get(r, 0, "b")); /* SQL NULL */
	ck_assert_str_eq(db_get(r, 0, "n"), "42");
	ck_assert_ptr_null(db_get(r, 0, "nope"));
	ck_assert_ptr_null(db_get(r, 1, "a"));
	ck_assert_int_eq(F.r.rc, RC_OK);
	ck_assert_str_eq(F.r.db_sqlstate, "");
}
END_TEST

START_TEST(test_value_found_and_not_found)
{
	NEED_PG();
	bool found = true;
	ck_assert_ptr_null(db_value(&F.r, &found, "SELECT 1 WHERE false", 0, NULL));
	ck_assert(!found);
	ck_assert_int_eq(F.r.rc, RC_OK); /* no row is not an error */
	ck_assert_str_eq(db_value(&F.r, &found, "SELECT 'x'", 0, NULL), "x");
	ck_assert(found);
	/* a row whose value is NULL: found, NULL */
	ck_assert_ptr_null(db_value(&F.r, &found, "SELECT NULL::text", 0, NULL));
	ck_assert(found);
	ck_assert_int_eq(F.r.rc, RC_OK);
}
END_TEST

START_TEST(test_error_mapping)
{
	NEED_PG();
	ck_assert_ptr_nonnull(db_exec(&F.r,
				      "CREATE TEMP TABLE t (id int PRIMARY KEY, "
				      "v int CHECK (v > 0))",
				      0, NULL));
	ck_assert_ptr_nonnull(db_exec(&F.r, "INSERT INTO t VALUES (1, 1)", 0, NULL));

	ck_assert_ptr_null(db_exec(&F.r, "INSERT INTO t VALUES (1, 1)", 0, NULL));
	ck_assert_int_eq(F.r.rc, RC_CONFLICT);
	ck_assert_str_eq(F.r.db_sqlstate, "23505");
	ck_assert_ptr_null(strstr(F.r.detail, "t_pkey")); /* no SQL internals for the client */

	ck_assert_ptr_null(db_exec(&F.r, "INSERT INTO t VALUES (2, -1)", 0, NULL));
	ck_assert_int_eq(F.r.rc, RC_BADREQ);
	ck_assert_str_eq(F.r.db_sqlstate, "23514");

	const char *bad[] = {"abc"};
	ck_assert_ptr_null(db_exec(&F.r, "SELECT $1::int", 1, bad));
	ck_assert_int_eq(F.r.rc, RC_INVALID); /* class 22, data exception: 422 */
	ck_assert_str_eq(F.r.db_sqlstate, "22P02");
	ck_assert_ptr_null(strstr(F.r.detail, "abc"));

	/* class 54, program limit exceeded (a value too big to index or store): 413, not 500 */
	ck_assert_ptr_null(db_exec(&F.r, "SELECT array_fill(0, ARRAY[200000000])", 0, NULL));
	ck_assert_int_eq(F.r.rc, RC_TOOLARGE);
	ck_assert_str_eq(F.r.db_sqlstate, "54000");
	ck_assert_str_eq(F.r.detail, "Value too large to store");

	ck_assert_ptr_null(db_exec(&F.r, "SELECT * FROM no_such_table", 0, NULL));
	ck_assert_int_eq(F.r.rc, RC_INTERNAL); /* a bug: 500, the text stays in the log */
	ck_assert_str_eq(F.r.db_sqlstate, "42P01");
	ck_assert_int_eq(rc_http_status(F.r.rc), 500);

	/* the connection is still usable after errors outside a transaction */
	F.r.rc = RC_OK;
	ck_assert_str_eq(db_value(&F.r, NULL, "SELECT count(*)::text FROM t", 0, NULL), "1");
}
END_TEST

START_TEST(test_statement_timeout)
{
	NEED_PG();
	int64_t t0 = now_us();
	ck_assert_ptr_null(db_exec(&F.r, "SELECT pg_sleep(5)", 0, NULL));
	ck_assert_msg(ms_since(t0) < 2000, "statement_timeout did not apply (%lld ms)",
		      (long long)ms_since(t0));
	ck_assert_int_eq(F.r.rc, RC_UNAVAILABLE);
	ck_assert_str_eq(F.r.db_sqlstate, "57014");
}
END_TEST

START_TEST(test_rollback_at_request_end)
{
	NEED_PG();
	ck_assert_ptr_nonnull(db_exec(&F.r, "CREATE TEMP TABLE r (id int)", 0, NULL));
	freq_done(&F);

	freq_init(&F, P, A);
	ck_assert_int_eq(db_begin(&F.r), RC_OK);
	ck_assert_ptr_nonnull(db_exec(&F.r, "INSERT INTO r VALUES (1)", 0, NULL));
	/* the handler returns without committing: the server rolls back */
	freq_done(&F);
	struct db_stats s;
	db_pool_stats(P, &s);
	ck_assert_int_eq(s.idle, 1); /* kept: the rollback left it idle */

	freq_init(&F, P, A);
	ck_assert_str_eq(db_value(&F.r, NULL, "SELECT count(*)::text FROM r", 0, NULL), "0");
	ck_assert_int_eq(db_begin(&F.r), RC_OK);
	ck_assert_ptr_nonnull(db_exec(&F.r, "INSERT INTO r VALUES (2)", 0, NULL));
	ck_assert_int_eq(db_commit(&F.r), RC_OK);
	freq_done(&F);

	freq_init(&F, P, A);
	ck_assert_str_eq(db_value(&F.r, NULL, "SELECT count(*)::text FROM r", 0, NULL), "1");
}
END_TEST

START_TEST(test_connection_released_at_request_end)
{
	NEED_PG();
	ck_assert_ptr_nonnull(db_exec(&F.r, "SELECT 1", 0, NULL));
	ck_assert_ptr_nonnull(F.r.db);
	struct db_stats s;
	db_pool_stats(P, &s);
	ck_assert_int_eq(s.in_use, 1);
	/* more statements in the same request reuse the same connection */
	ck_assert_ptr_nonnull(db_exec(&F.r, "SELECT 2", 0, NULL));
	db_pool_stats(P, &s);
	ck_assert_uint_eq(s.checkouts, 1);
	db_done(&F.r);
	ck_assert_ptr_null(F.r.db);
	db_pool_stats(P, &s);
	ck_assert_int_eq(s.in_use, 0);
}
END_TEST

/* db_exec_script: several statements in one simple query (a migration file); the result of the
 * last; an empty script; and the errors mapped like db_exec's. A server's context never keeps
 * PostgreSQL's text (db_error NULL: the log has it, the client the safe detail). */
START_TEST(test_exec_script)
{
	NEED_PG();
	PGresult *r = db_exec_script(&F.r, "CREATE TEMP TABLE s (x int);\n"
					   "INSERT INTO s VALUES (1), (2);\n"
					   "SELECT count(*)::text AS n FROM s");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(db_get(r, 0, "n"), "2");
	r = db_exec_script(&F.r, "");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(PQresultStatus(r), PGRES_EMPTY_QUERY);
	ck_assert_ptr_null(db_exec_script(&F.r, "INSERT INTO s VALUES (3);\nSELECT nosuch FROM s"));
	ck_assert_int_eq(F.r.rc, RC_INTERNAL);
	ck_assert_str_eq(F.r.db_sqlstate, "42703");
	ck_assert_ptr_null(db_error(&F.r));
	ck_assert_ptr_null(db_error_field(&F.r, PG_DIAG_STATEMENT_POSITION));
	/* nothing prepared: a script may name tables that a prepared statement would pin */
	ck_assert_str_eq(db_value(&F.r, NULL, "SELECT count(*)::text FROM s", 0, NULL), "2");
}
END_TEST

/* A tool's pool (db_pool_opts.tool): PostgreSQL's own message of the last failure, whole, and
 * the failed statement's fields (the position a migration reports as file:line); forgotten by
 * the next statement and by ctx_clear. */
START_TEST(test_tool_keeps_the_message)
{
	NEED_PG();
	struct db_pool_opts o = {.conninfo = conninfo,
				 .size = 1,
				 .timeout_ms = 1000,
				 .application_name = "test-db",
				 .tool = true};
	struct db_pool *p = db_pool_new(&o);
	struct arena *a = arena_new(4096);
	struct freq f;
	freq_init(&f, p, a);
	ck_assert_ptr_null(db_exec_script(&f.r, "SELECT 1;\nSELECT nosuch"));
	ck_assert_int_eq(f.r.rc, RC_INTERNAL);
	ck_assert_str_eq(f.r.db_sqlstate, "42703");
	ck_assert_ptr_nonnull(db_error(&f.r));
	ck_assert_msg(strstr(db_error(&f.r), "ERROR:  column \"nosuch\" does not exist\n"), "%s",
		      db_error(&f.r));
	ck_assert_str_eq(db_error_field(&f.r, PG_DIAG_STATEMENT_POSITION), "18");
	/* a unique violation: the code for the caller's own words, and PostgreSQL's text */
	ck_assert_ptr_nonnull(db_exec_script(&f.r, "CREATE TEMP TABLE u (k int PRIMARY KEY)"));
	ck_assert_ptr_null(db_error(&f.r));
	const char *one[] = {"1"};
	ck_assert_ptr_nonnull(db_exec(&f.r, "INSERT INTO u VALUES ($1::int)", 1, one));
	ck_assert_ptr_null(db_exec(&f.r, "INSERT INTO u VALUES ($1::int)", 1, one));
	ck_assert_int_eq(f.r.rc, RC_CONFLICT);
	ck_assert_ptr_nonnull(strstr(db_error(&f.r), "u_pkey"));
	ck_assert_ptr_null(db_error_field(&f.r, PG_DIAG_STATEMENT_POSITION));
	ctx_clear(&f.r);
	ck_assert_ptr_null(db_error(&f.r));
	freq_done(&f);
	db_pool_free(p);

	/* a connection failure: libpq's whole message, no result fields */
	o.conninfo = "host=/nonexistent-test-db dbname=x";
	p = db_pool_new(&o);
	freq_init(&f, p, a);
	ck_assert_ptr_null(db_exec_script(&f.r, "SELECT 1"));
	ck_assert_int_eq(f.r.rc, RC_UNAVAILABLE);
	ck_assert_str_eq(f.r.detail, "Database unavailable");
	ck_assert_msg(strstr(db_error(&f.r), "/nonexistent-test-db") &&
			      strncmp(db_error(&f.r), "connect failed", 14) != 0,
		      "%s", db_error(&f.r));
	ck_assert_ptr_null(db_error_field(&f.r, PG_DIAG_SQLSTATE));
	freq_done(&f);
	arena_free(a);
	db_pool_free(p);
}
END_TEST

static Suite *db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tp = tcase_create("pool");
	tcase_add_checked_fixture(tp, setup, NULL);
	tcase_set_timeout(tp, 30);
	tcase_add_test(tp, test_reuse_idle_connection);
	tcase_add_test(tp, test_checkout_timeout);
	tcase_add_test(tp, test_overflow);
	tcase_add_test(tp, test_waiter_gets_returned_connection);
	tcase_add_test(tp, test_many_threads_bounded);
	tcase_add_test(tp, test_recycle);
	tcase_add_test(tp, test_pre_ping_replaces_dead_connection);
	tcase_add_test(tp, test_recovers_without_pre_ping);
	tcase_add_test(tp, test_unreachable_server);
	tcase_add_test(tp, test_request_unreachable_is_503);
	suite_add_tcase(s, tp);
	TCase *tr = tcase_create("request");
	tcase_add_checked_fixture(tr, req_setup, req_teardown);
	tcase_add_unchecked_fixture(tr, NULL, suite_teardown);
	tcase_set_timeout(tr, 30);
	tcase_add_test(tr, test_exec_params);
	tcase_add_test(tr, test_value_found_and_not_found);
	tcase_add_test(tr, test_error_mapping);
	tcase_add_test(tr, test_statement_timeout);
	tcase_add_test(tr, test_rollback_at_request_end);
	tcase_add_test(tr, test_connection_released_at_request_end);
	tcase_add_test(tr, test_exec_script);
	tcase_add_test(tr, test_tool_keeps_the_message);
	suite_add_tcase(s, tr);
	return s;
}

int main(void)
{
	/* no PostgreSQL: automake's SKIP (77), which tests/run-suites counts as a failure, never
	 * as a pass */
	suite_setup();
	if (!conninfo[0])
		return 77;
	SRunner *sr = srunner_create(db_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
