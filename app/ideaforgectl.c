/* ideaforgectl.c - the administrator's tool: schema migrations, demo seed, user accounts.
 *
 *   ideaforgectl [--config FILE] [--key=value...] <command> [options]
 *
 *   migrate [--sql-dir DIR]         apply pending sql/NNNN_name.sql files, in order
 *   seed-demo [--sql-dir DIR]       load DIR/seed/demo.sql (idempotent)
 *   user add --email E --name N [--tenant SLUG] [--persona P] [--password-stdin]
 *   user passwd --email E [--password-stdin]
 *   user deactivate --email E
 *   user activate --email E
 *
 * Exit status: 0 done, 1 failed, 2 usage error. Options before the command are configuration
 * keys (app/config.h); database_url is the libpq connection string. This is an operator's
 * tool, so PostgreSQL's own error text is printed as is.
 *
 * Migrations are forward-only: each file runs once, in its own transaction together with its
 * schema_migrations row, under a session advisory lock so that several machines may run
 * `migrate` at the same time (the others wait, then find nothing to do). An applied file
 * whose SHA-256 changed is refused: a change goes into a new file.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "jx.h"
#include "config.h"
#include "kv.h"
#include "pw.h"
#include "sess.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

/* Key of the session advisory lock taken by migrate and seed-demo: the bytes "IdeaFrge" read
 * as a big-endian int64, a constant no other user of the database should pick by chance. */
#define CTL_LOCK_KEY "5288463330907940709"

#define CTL_MAX_SQL_BYTES (16 * 1024 * 1024) /* refuse absurd files rather than load them */
#define CTL_MAX_MIGRATIONS 10000             /* NNNN */
#define CTL_PW_MAX 1024                      /* bytes of a password read from stdin */
#define CTL_DEMO_PASSWORD "password123"      /* documented demo password (API.md 2.2) */

enum ctl_opt {
	OPT_SQL_DIR,
	OPT_EMAIL,
	OPT_NAME,
	OPT_TENANT,
	OPT_PERSONA,
	OPT_PASSWORD_STDIN,
	OPT__MAX
};

#define OPTBIT(o) (1u << (o))

static const struct {
	const char *name; /* as typed, with the dashes */
	bool has_arg;     /* takes a value (--opt V or --opt=V) */
} ctl_opts[OPT__MAX] = {
	[OPT_SQL_DIR] = {"--sql-dir", true}, [OPT_EMAIL] = {"--email", true},
	[OPT_NAME] = {"--name", true},       [OPT_TENANT] = {"--tenant", true},
	[OPT_PERSONA] = {"--persona", true}, [OPT_PASSWORD_STDIN] = {"--password-stdin", false},
};

/* Personas accepted by user_profiles (CHECK in sql/0001_core.sql). */

/* Everything a command needs; filled by main() from the command line and the configuration. */
struct ctl {
	const char *opt[OPT__MAX];   /* option values; "" for a given flag, NULL when absent */
	const char *conninfo;        /* libpq connection string (borrowed from the config) */
	const char *sql_dir;         /* migrations directory (borrowed) */
	struct pw_params pw;         /* argon2id parameters of new hashes */
	int64_t password_min_length; /* in characters */
	const struct srv_config *srv; /* server section: redis_url and its timeouts (borrowed) */
	int64_t session_cache_ttl_s;  /* lifetime of cached session checks (app_config) */
};

struct ctl_cmd {
	const char *name;          /* first word */
	const char *sub;           /* second word, or NULL */
	int (*run)(struct ctl *c); /* returns the exit status */
	unsigned allowed;          /* OPTBIT set of accepted options */
	unsigned required;         /* OPTBIT set of mandatory options */
	const char *synopsis;      /* one line of the usage text */
};

static int ctl_cmd_migrate(struct ctl *c);
static int ctl_cmd_seed_demo(struct ctl *c);
static int ctl_cmd_user_add(struct ctl *c);
static int ctl_cmd_user_passwd(struct ctl *c);
static int ctl_cmd_user_deactivate(struct ctl *c);
static int ctl_cmd_user_activate(struct ctl *c);

static const struct ctl_cmd ctl_cmds[] = {
	{"migrate", NULL, ctl_cmd_migrate, OPTBIT(OPT_SQL_DIR), 0, "migrate [--sql-dir DIR]"},
	{"seed-demo", NULL, ctl_cmd_seed_demo, OPTBIT(OPT_SQL_DIR), 0, "seed-demo [--sql-dir DIR]"},
	{"user", "add", ctl_cmd_user_add,
	 OPTBIT(OPT_EMAIL) | OPTBIT(OPT_NAME) | OPTBIT(OPT_TENANT) | OPTBIT(OPT_PERSONA) |
		 OPTBIT(OPT_PASSWORD_STDIN),
	 OPTBIT(OPT_EMAIL) | OPTBIT(OPT_NAME),
	 "user add --email E --name N [--tenant SLUG] [--persona P] [--password-stdin]"},
	{"user", "passwd", ctl_cmd_user_passwd, OPTBIT(OPT_EMAIL) | OPTBIT(OPT_PASSWORD_STDIN),
	 OPTBIT(OPT_EMAIL), "user passwd --email E [--password-stdin]"},
	{"user", "deactivate", ctl_cmd_user_deactivate, OPTBIT(OPT_EMAIL), OPTBIT(OPT_EMAIL),
	 "user deactivate --email E"},
	{"user", "activate", ctl_cmd_user_activate, OPTBIT(OPT_EMAIL), OPTBIT(OPT_EMAIL),
	 "user activate --email E"},
};

#define CTL_NCMDS (sizeof ctl_cmds / sizeof ctl_cmds[0])

static void ctl_usage(FILE *f)
{
	fprintf(f, "usage: ideaforgectl [--config FILE] [--key=value...] <command> [options]\n\n"
		   "commands:\n");
	for (size_t i = 0; i < CTL_NCMDS; i++)
		fprintf(f, "  %s\n", ctl_cmds[i].synopsis);
	fprintf(f, "\nPasswords are read from standard input (one line); on a terminal the tool\n"
		   "prompts without echo unless --password-stdin is given.\n"
		   "The migrations directory is --sql-dir, else the sql_dir key (env "
		   "IDEAFORGE_SQL_DIR).\n"
		   "Exit status: 0 done, 1 failed, 2 usage error.\n");
}

static void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("ideaforgectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Prints PostgreSQL's message for a failed result (or the connection's, when res is NULL),
 * prefixed with what we were doing. */
static void ctl_pg_err(PGconn *conn, const PGresult *res, const char *what)
{
	const char *m = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	size_t n = strlen(m);

	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	ctl_err("%s: %.*s", what, (int)n, n ? m : "unknown error");
}

/* --- database helpers ---------------------------------------------------------------------- */

/* Runs a statement without parameters and expects success. 0 or -1 (message printed). */
static int ctl_exec(PGconn *conn, const char *sql, const char *what)
{
	PGresult *res = PQexec(conn, sql);
	int rc = -1;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_pg_err(conn, res, what);
		goto out;
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* Runs a parameterised statement. Returns the result (caller PQclears) or NULL with the
 * message printed. When sqlstate is not NULL, it receives the SQLSTATE of a failure, and a
 * unique violation (23505) is left unprinted so the caller can explain it in its own words. */
static PGresult *ctl_query(PGconn *conn, const char *sql, int n, const char *const *params,
			   const char *what, char sqlstate[6])
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	if (sqlstate) {
		const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		snprintf(sqlstate, 6, "%s", s ? s : "");
		if (strcmp(sqlstate, "23505") != 0)
			ctl_pg_err(conn, res, what);
	} else {
		ctl_pg_err(conn, res, what);
	}
	PQclear(res);
	return NULL;
}

/* Connects with the configured connection string; NULL with a message on failure. */
static PGconn *ctl_connect(const struct ctl *c)
{
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const vals[] = {c->conninfo, "ideaforgectl", NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);

	if (conn == NULL) {
		ctl_err("connect: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		ctl_pg_err(conn, NULL, "connect");
		PQfinish(conn);
		return NULL;
	}
	/* Our own session settings: no NOTICE chatter ("... does not exist, skipping"), and
	 * no statement timeout a role or database may carry for the application. */
	if (ctl_exec(conn, "SET client_min_messages = warning; SET statement_timeout = 0",
		     "connect") < 0) {
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Takes the migration lock, saying so when another process holds it. 0 or -1. */
static int ctl_lock(PGconn *conn)
{
	const char *const p[] = {CTL_LOCK_KEY};
	PGresult *res;
	bool got;

	res = ctl_query(conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, p, "lock", NULL);
	if (res == NULL)
		return -1;
	got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (got)
		return 0;
	fprintf(stderr, "ideaforgectl: waiting for another ideaforgectl to finish...\n");
	res = ctl_query(conn, "SELECT pg_advisory_lock($1::bigint)", 1, p, "lock", NULL);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* --- files ------------------------------------------------------------------------------- */

/* Reads a whole SQL file into a NUL-terminated malloc'd buffer. NULL with a message. */
static char *ctl_read_file(const char *path, size_t *len_out)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
		ctl_err("%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CTL_MAX_SQL_BYTES) {
		ctl_err("%s: not a regular file of at most %d bytes", path, CTL_MAX_SQL_BYTES);
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		ctl_err("%s: out of memory", path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ctl_err("%s: %s", path,
				n < 0 ? strerror(errno) : "file shrank while reading");
			goto fail;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (strlen(buf) != got) {
		ctl_err("%s: contains a NUL byte", path);
		goto fail;
	}
	close(fd);
	*len_out = got;
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/* SHA-256 of data as 64 lower-case hex digits. 0 or -1. */
static int ctl_sha256_hex(const char *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* The 1-based line of the 1-based character position pos in text (PostgreSQL reports
 * positions in characters, the file is UTF-8). */
static long ctl_line_of(const char *text, long pos)
{
	long line = 1, chars = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if ((*p & 0xC0) != 0x80 && ++chars >= pos)
			break;
		if (*p == '\n')
			line++;
	}
	return line;
}

/* --- migrate ------------------------------------------------------------------------------ */

struct ctl_migration {
	char version[5]; /* "0001" */
	char *name;      /* "core" (malloc'd) */
	char *file;      /* "0001_core.sql" (malloc'd) */
	char sha[65];    /* hex SHA-256 of the file */
	char *sql;       /* file contents (malloc'd) */
	bool applied;    /* found in schema_migrations */
};

static void ctl_migrations_free(struct ctl_migration *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].name);
		free(m[i].file);
		free(m[i].sql);
	}
	free(m);
}

static int ctl_migration_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ctl_migration *)a)->version,
		      ((const struct ctl_migration *)b)->version);
}

/* Is name "NNNN_name.sql" with name of [A-Za-z0-9_-]? */
static bool ctl_migration_name_ok(const char *f)
{
	size_t n = strlen(f);

	if (n < 10 || strcmp(f + n - 4, ".sql") != 0 || f[4] != '_')
		return false;
	for (size_t i = 0; i < 4; i++)
		if (!isdigit((unsigned char)f[i]))
			return false;
	for (size_t i = 5; i < n - 4; i++)
		if (!isalnum((unsigned char)f[i]) && f[i] != '_' && f[i] != '-')
			return false;
	return true;
}

/* Loads every migration of dir, sorted. Other *.sql names are an error (a misnamed file would
 * otherwise be silently skipped); non-.sql entries, dotfiles and directories are ignored. */
static int ctl_migrations_load(const char *dir, struct ctl_migration **out, size_t *nout)
{
	struct ctl_migration *m = NULL;
	size_t n = 0, cap = 0;
	DIR *d = NULL;
	struct dirent *de;
	char path[4096];
	int rc = -1;

	if ((d = opendir(dir)) == NULL) {
		ctl_err("migrations directory %s: %s", dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		const char *f = de->d_name;
		size_t fl = strlen(f), len;
		struct stat st;

		if (f[0] == '.' || fl < 4 || strcmp(f + fl - 4, ".sql") != 0)
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, f) >= (int)sizeof path) {
			ctl_err("%s/%s: path too long", dir, f);
			goto out;
		}
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		if (!ctl_migration_name_ok(f)) {
			ctl_err("%s: migration files must be named NNNN_name.sql", path);
			goto out;
		}
		if (n >= CTL_MAX_MIGRATIONS) {
			ctl_err("%s: too many files", dir);
			goto out;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct ctl_migration *nm = realloc(m, ncap * sizeof *m);

			if (nm == NULL) {
				ctl_err("out of memory");
				goto out;
			}
			m = nm;
			cap = ncap;
		}
		memset(&m[n], 0, sizeof m[n]);
		n++;
		memcpy(m[n - 1].version, f, 4);
		m[n - 1].file = strdup(f);
		m[n - 1].name = strndup(f + 5, fl - 5 - 4);
		if (!m[n - 1].file || !m[n - 1].name) {
			ctl_err("out of memory");
			goto out;
		}
		if ((m[n - 1].sql = ctl_read_file(path, &len)) == NULL)
			goto out;
		if (ctl_sha256_hex(m[n - 1].sql, len, m[n - 1].sha) < 0) {
			ctl_err("%s: SHA-256 failed", path);
			goto out;
		}
	}
	qsort(m, n, sizeof *m, ctl_migration_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(m[i - 1].version, m[i].version) == 0) {
			ctl_err("%s/%s and %s: two migrations with version %s", dir, m[i - 1].file,
				m[i].file, m[i].version);
			goto out;
		}
	}
	*out = m;
	*nout = n;
	m = NULL;
	rc = 0;
out:
	if (d)
		closedir(d);
	if (rc < 0)
		ctl_migrations_free(m, n);
	return rc;
}

/* Applies one migration in its own transaction with its bookkeeping row. 0 or -1. */
static int ctl_migration_apply(PGconn *conn, const char *dir, const struct ctl_migration *m)
{
	const char *const p[] = {m->version, m->name, m->sha};
	PGresult *res = NULL;
	char what[4200];
	int rc = -1;

	snprintf(what, sizeof what, "%s/%s", dir, m->file);
	if (ctl_exec(conn, "BEGIN", what) < 0)
		goto out;
	res = PQexec(conn, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_EMPTY_QUERY) {
		const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);

		if (pos)
			snprintf(what, sizeof what, "%s/%s:%ld", dir, m->file,
				 ctl_line_of(m->sql, strtol(pos, NULL, 10)));
		ctl_pg_err(conn, res, what);
		goto out;
	}
	PQclear(res);
	res = NULL;
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		ctl_err("%s: the file ended the transaction itself (COMMIT/ROLLBACK), so what ran "
			"before that is committed but not recorded; migrations must not contain "
			"transaction control: check the database by hand",
			what);
		goto out;
	}
	res = ctl_query(
		conn, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
		3, p, what, NULL);
	if (res == NULL)
		goto out;
	if (ctl_exec(conn, "COMMIT", what) < 0)
		goto out;
	rc = 0;
out:
	PQclear(res);
	if (rc < 0 && PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
	/* A file's SET statements must not leak into the next file. */
	if (rc == 0 && ctl_exec(conn,
				"RESET ALL; SET client_min_messages = warning; "
				"SET statement_timeout = 0",
				what) < 0)
		rc = -1;
	return rc;
}

static int ctl_cmd_migrate(struct ctl *c)
{
	struct ctl_migration *m = NULL;
	size_t n = 0, napplied_now = 0;
	PGconn *conn = NULL;
	PGresult *res = NULL;
	const char *latest = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_migrations_load(c->sql_dir, &m, &n) < 0)
		goto out;
	if (n == 0) {
		ctl_err("%s: no NNNN_name.sql files", c->sql_dir);
		goto out;
	}
	if ((conn = ctl_connect(c)) == NULL || ctl_lock(conn) < 0)
		goto out;
	if (ctl_exec(conn,
		     "CREATE TABLE IF NOT EXISTS schema_migrations ("
		     " version text PRIMARY KEY CHECK (version ~ '^[0-9]{4}$'),"
		     " name text NOT NULL,"
		     " checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),"
		     " applied_at timestamptz NOT NULL DEFAULT now())",
		     "schema_migrations") < 0)
		goto out;
	res = ctl_query(
		conn,
		"SELECT version, name, checksum, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SSOF')"
		" FROM schema_migrations ORDER BY version",
		0, NULL, "schema_migrations", NULL);
	if (res == NULL)
		goto out;
	/* Applied files must be unchanged; applied versions unknown here are only reported. */
	for (int r = 0; r < PQntuples(res); r++) {
		const char *ver = PQgetvalue(res, r, 0), *sum = PQgetvalue(res, r, 2);
		struct ctl_migration *hit = NULL;

		latest = ver;
		for (size_t i = 0; i < n && !hit; i++)
			if (strcmp(m[i].version, ver) == 0)
				hit = &m[i];
		if (hit == NULL) {
			fprintf(stderr,
				"ideaforgectl: note: migration %s_%s is applied but not in %s\n",
				ver, PQgetvalue(res, r, 1), c->sql_dir);
			continue;
		}
		hit->applied = true;
		if (strcmp(hit->sha, sum) != 0) {
			ctl_err("%s/%s: changed since it was applied on %s (sha256 then %s, now %s); "
				"applied migrations are never edited: put the change in a new file",
				c->sql_dir, hit->file, PQgetvalue(res, r, 3), sum, hit->sha);
			goto out;
		}
	}
	/* Forward-only: a pending file older than the newest applied one is a merge mistake. */
	for (size_t i = 0; i < n; i++) {
		if (!m[i].applied && latest && strcmp(m[i].version, latest) < 0) {
			ctl_err("%s/%s is pending but migration %s is already applied; renumber it "
				"after %s",
				c->sql_dir, m[i].file, latest, latest);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (m[i].applied)
			continue;
		if (ctl_migration_apply(conn, c->sql_dir, &m[i]) < 0)
			goto out;
		printf("applied %s\n", m[i].file);
		fflush(stdout);
		napplied_now++;
	}
	if (napplied_now == 0)
		printf("up to date (%s/%s)\n", m[n - 1].version, m[n - 1].name);
	rc = CTL_EXIT_OK;
out:
	PQclear(res);
	PQfinish(conn); /* also releases the advisory lock */
	ctl_migrations_free(m, n);
	return rc;
}

/* --- seed-demo ---------------------------------------------------------------------------- */

static int ctl_cmd_seed_demo(struct ctl *c)
{
	char path[4096], hash[PW_HASH_MAX] = "";
	const char *p[1] = {hash};
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char *sql = NULL;
	size_t len;
	int rc = CTL_EXIT_FAIL;

	if (snprintf(path, sizeof path, "%s/seed/demo.sql", c->sql_dir) >= (int)sizeof path) {
		ctl_err("%s: path too long", c->sql_dir);
		goto out;
	}
	if ((sql = ctl_read_file(path, &len)) == NULL)
		goto out;
	if (pw_hash(&c->pw, CTL_DEMO_PASSWORD, hash, sizeof hash) < 0) {
		ctl_err("cannot hash the demo password (argon2 parameters or memory)");
		goto out;
	}
	if ((conn = ctl_connect(c)) == NULL || ctl_lock(conn) < 0)
		goto out;
	res = ctl_query(conn, "SELECT to_regclass('public.user_profiles') IS NOT NULL", 0, NULL,
			"schema check", NULL);
	if (res == NULL)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		ctl_err("the database has no schema yet: run 'ideaforgectl migrate' first");
		goto out;
	}
	PQclear(res);
	res = NULL;
	if (ctl_exec(conn, "BEGIN", path) < 0)
		goto out;
	/* The file reads the hash with current_setting('ideaforge.demo_hash'); local to this
	 * transaction. */
	res = ctl_query(conn, "SELECT set_config('ideaforge.demo_hash', $1, true)", 1, p, path,
			NULL);
	if (res == NULL)
		goto out;
	PQclear(res);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
		char what[4200];

		snprintf(what, sizeof what, "%s", path);
		if (pos)
			snprintf(what, sizeof what, "%s:%ld", path,
				 ctl_line_of(sql, strtol(pos, NULL, 10)));
		ctl_pg_err(conn, res, what);
		goto out;
	}
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		ctl_err("%s: the file ended the transaction itself", path);
		goto out;
	}
	if (ctl_exec(conn, "COMMIT", path) < 0)
		goto out;
	/* The file ends with a SELECT of row counts: show them. */
	printf("demo data loaded from %s", path);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		for (int i = 0; i < PQnfields(res); i++)
			printf("%s %s=%s", i ? "" : ":", PQfname(res, i), PQgetvalue(res, 0, i));
	printf("\ndemo accounts (e.g. admin@ideaforge.ai) use the password '%s'\n",
	       CTL_DEMO_PASSWORD);
	rc = CTL_EXIT_OK;
out:
	PQclear(res);
	if (rc != CTL_EXIT_OK && conn && PQtransactionStatus(conn) == PQTRANS_INERROR)
		PQclear(PQexec(conn, "ROLLBACK"));
	PQfinish(conn);
	free(sql);
	return rc;
}

/* --- users ------------------------------------------------------------------------------- */

/* Number of UTF-8 characters (code points) in s. */
static size_t ctl_utf8_len(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xC0) != 0x80)
			n++;
	return n;
}

/* Reads one line (the password) from stdin into buf. On a terminal, without
 * --password-stdin, prompts twice with echo off. 0, or -1 with a message. */
static int ctl_read_password(const struct ctl *c, char *buf, size_t buflen)
{
	bool prompt = c->opt[OPT_PASSWORD_STDIN] == NULL && isatty(STDIN_FILENO);
	char again[CTL_PW_MAX + 2];
	struct termios old, noecho;
	bool restore = false;
	int rc = -1;

	for (int round = 0; round < (prompt ? 2 : 1); round++) {
		char *dst = round == 0 ? buf : again;
		size_t dstlen = round == 0 ? buflen : sizeof again, n;

		if (prompt) {
			fputs(round == 0 ? "New password: " : "Again: ", stderr);
			fflush(stderr);
			if (tcgetattr(STDIN_FILENO, &old) == 0) {
				noecho = old;
				noecho.c_lflag &= ~(tcflag_t)ECHO;
				restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) == 0;
			}
		}
		if (fgets(dst, (int)dstlen, stdin) == NULL) {
			ctl_err("no password on standard input");
			goto out;
		}
		if (restore) {
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
			restore = false;
			fputc('\n', stderr);
		}
		n = strlen(dst);
		if (n > 0 && dst[n - 1] == '\n')
			dst[--n] = '\0';
		else if (!feof(stdin)) {
			ctl_err("password longer than %d bytes", CTL_PW_MAX);
			goto out;
		}
		if (n > 0 && dst[n - 1] == '\r')
			dst[--n] = '\0';
	}
	if (prompt && strcmp(buf, again) != 0) {
		ctl_err("the two passwords differ");
		goto out;
	}
	if ((int64_t)ctl_utf8_len(buf) < c->password_min_length || buf[0] == '\0') {
		ctl_err("password shorter than %lld characters (password_min_length)",
			(long long)c->password_min_length);
		goto out;
	}
	rc = 0;
out:
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	explicit_bzero(again, sizeof again);
	return rc;
}

/* A plausible address: one '@' with text on both sides, no spaces or controls, <= 254. */
static bool ctl_email_ok(const char *e)
{
	const char *at = strchr(e, '@');

	if (at == NULL || at == e || at[1] == '\0' || strchr(at + 1, '@') || strlen(e) > 254)
		return false;
	for (const unsigned char *p = (const unsigned char *)e; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/*
 * Ends every cached session of a user in Redis (lib/sess.h): a new revocation marker for the
 * user, so that no worker's cache vouches for any of their sessions any more; the next request
 * of each session asks PostgreSQL, which says revoked. If Redis does not answer, nothing is
 * lost: either it is down (and comes back empty: the cache runs without persistence), or it
 * is hung, and then the cache generation lease (at most redis_command_timeout_ms) has run out
 * by the time it answers anyone again, which makes every entry written before stale.
 */
static void ctl_revoke_cached(const struct ctl *c, const char *user_id)
{
	struct kv_shared sh;
	struct kv *k;

	kv_shared_init(&sh);
	k = kv_new(c->srv->redis_url, c->srv->redis_connect_timeout_ms,
		   c->srv->redis_command_timeout_ms, &sh);
	if (k == NULL || sess_revoke(k, user_id, NULL, c->session_cache_ttl_s) < 0)
		fprintf(stderr,
			"ideaforgectl: note: Redis did not answer; the revocation stands in "
			"PostgreSQL and cached sessions stop being trusted on their own\n");
	kv_free(k);
}

/*
 * Revokes every live session of a user in PostgreSQL, the durable record that every worker
 * consults when its Redis cache misses, then in the Redis session cache (ctl_revoke_cached).
 * Runs on its own (autocommit), after the change that motivated it (new password,
 * deactivation) has committed, so a concurrent cache refill cannot bring back a session that
 * we revoke. Idempotent. *nrevoked gets the count. Returns 0 or -1 (message printed).
 */
static int ctl_revoke_sessions(const struct ctl *c, PGconn *conn, const char *user_id,
			       long *nrevoked)
{
	const char *const p[] = {user_id};
	PGresult *res;

	res = ctl_query(conn,
			"UPDATE user_sessions SET revoked_at = now()"
			" WHERE user_id = $1 AND revoked_at IS NULL RETURNING id::text",
			1, p, "revoke sessions", NULL);
	if (res == NULL)
		return -1;
	*nrevoked = PQntuples(res);
	PQclear(res);
	ctl_revoke_cached(c, user_id);
	return 0;
}

static int ctl_cmd_user_add(struct ctl *c)
{
	const char *email = c->opt[OPT_EMAIL], *name = c->opt[OPT_NAME];
	const char *tenant = c->opt[OPT_TENANT] ? c->opt[OPT_TENANT] : "default";
	const char *persona = c->opt[OPT_PERSONA] ? c->opt[OPT_PERSONA] : "product_manager";
	char pw[CTL_PW_MAX + 2] = "", hash[PW_HASH_MAX] = "", state[6] = "";
	const char *p[5] = {email, name, persona, hash, tenant};
	PGconn *conn = NULL;
	PGresult *res = NULL;
	bool persona_ok = false, name_ok = false;
	const char *bad = NULL;
	int rc = CTL_EXIT_FAIL;

	persona_ok = jx_one_of(persona, user_personas);
	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		if (*s < ' ' || *s == 0x7f) {
			name_ok = false;
			break;
		}
		name_ok |= *s != ' ';
	}
	if (!ctl_email_ok(email))
		bad = "--email: not an email address";
	else if (!name_ok)
		bad = "--name: must not be empty or contain control characters";
	else if (!persona_ok)
		bad = "--persona: one of product_manager, leadership, tech_lead";
	if (bad) {
		ctl_err("user add: %s", bad);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (ctl_read_password(c, pw, sizeof pw) < 0)
		goto out;
	if (pw_hash(&c->pw, pw, hash, sizeof hash) < 0) {
		ctl_err("cannot hash the password (argon2 parameters or memory)");
		goto out;
	}
	if ((conn = ctl_connect(c)) == NULL)
		goto out;
	/* One statement: the user and its default preferences, or nothing. */
	res = ctl_query(
		conn,
		"WITH t AS (SELECT id FROM tenants WHERE slug = $5),"
		" u AS (INSERT INTO user_profiles"
		"        (email, full_name, persona, password_hash, tenant_id, auth_provider)"
		"       SELECT lower($1), $2, $3, $4, t.id, 'local' FROM t RETURNING id),"
		" pref AS (INSERT INTO user_preferences (user_id) SELECT id FROM u)"
		" SELECT id::text FROM u",
		5, p, "user add", state);
	if (res == NULL) {
		if (strcmp(state, "23505") == 0)
			ctl_err("a user with email %s already exists", email);
		goto out;
	}
	if (PQntuples(res) != 1) {
		ctl_err("no tenant with slug '%s'", tenant);
		goto out;
	}
	printf("%s\n", PQgetvalue(res, 0, 0));
	rc = CTL_EXIT_OK;
out:
	explicit_bzero(pw, sizeof pw);
	PQclear(res);
	PQfinish(conn);
	return rc;
}

/* Sets one user's column by email and revokes their sessions; shared by passwd, deactivate
 * and activate. set_sql takes $1 = email and optionally $2; it must RETURN id::text, email. */
static int ctl_user_update(struct ctl *c, const char *set_sql, const char *arg2, bool revoke,
			   const char *done)
{
	const char *const p[2] = {c->opt[OPT_EMAIL], arg2};
	PGconn *conn = NULL;
	PGresult *res = NULL;
	long nrevoked = 0;
	int rc = CTL_EXIT_FAIL;

	if ((conn = ctl_connect(c)) == NULL)
		goto out;
	res = ctl_query(conn, set_sql, arg2 ? 2 : 1, p, done, NULL);
	if (res == NULL)
		goto out;
	if (PQntuples(res) != 1) {
		ctl_err("no user with email %s", c->opt[OPT_EMAIL]);
		goto out;
	}
	if (revoke && ctl_revoke_sessions(c, conn, PQgetvalue(res, 0, 0), &nrevoked) < 0)
		goto out;
	if (revoke)
		printf("%s %s; %ld session(s) revoked\n", done, PQgetvalue(res, 0, 1), nrevoked);
	else
		printf("%s %s\n", done, PQgetvalue(res, 0, 1));
	rc = CTL_EXIT_OK;
out:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static int ctl_cmd_user_passwd(struct ctl *c)
{
	char pw[CTL_PW_MAX + 2] = "", hash[PW_HASH_MAX] = "";
	int rc = CTL_EXIT_FAIL;

	if (ctl_read_password(c, pw, sizeof pw) < 0)
		goto out;
	if (pw_hash(&c->pw, pw, hash, sizeof hash) < 0) {
		ctl_err("cannot hash the password (argon2 parameters or memory)");
		goto out;
	}
	rc = ctl_user_update(c,
			     "UPDATE user_profiles SET password_hash = $2"
			     " WHERE email = lower($1) RETURNING id::text, email",
			     hash, true, "password changed for");
out:
	explicit_bzero(pw, sizeof pw);
	return rc;
}

static int ctl_cmd_user_deactivate(struct ctl *c)
{
	return ctl_user_update(c,
			       "UPDATE user_profiles SET is_active = false"
			       " WHERE email = lower($1) RETURNING id::text, email",
			       NULL, true, "deactivated");
}

static int ctl_cmd_user_activate(struct ctl *c)
{
	return ctl_user_update(c,
			       "UPDATE user_profiles SET is_active = true"
			       " WHERE email = lower($1) RETURNING id::text, email",
			       NULL, false, "activated");
}

/* --- command line ------------------------------------------------------------------------ */

/* Matches argv[*i] against the options in `allowed`; stores the value and advances *i past
 * it. Returns 1 when matched, 0 when not an option of ours, -1 on a missing value. */
static int ctl_take_opt(struct ctl *c, unsigned allowed, int argc, char **argv, int *i)
{
	const char *a = argv[*i];

	for (int o = 0; o < OPT__MAX; o++) {
		size_t n = strlen(ctl_opts[o].name);

		if (!(allowed & OPTBIT(o)) || strncmp(a, ctl_opts[o].name, n) != 0)
			continue;
		if (a[n] == '\0') {
			if (!ctl_opts[o].has_arg) {
				c->opt[o] = "";
				return 1;
			}
			if (*i + 1 >= argc) {
				ctl_err("%s needs a value", ctl_opts[o].name);
				return -1;
			}
			c->opt[o] = argv[++*i];
			return 1;
		}
		if (a[n] == '=' && ctl_opts[o].has_arg) {
			c->opt[o] = a + n + 1;
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl c = {0};
	struct srv_config *srv = NULL;
	void *appv = NULL;
	const struct app_config *app;
	const struct ctl_cmd *cmd = NULL;
	char **cfg_argv = NULL, err[512];
	int cfg_argc = 1, i = 1, rc = CTL_EXIT_USAGE;

	if ((cfg_argv = calloc((size_t)argc + 1, sizeof *cfg_argv)) == NULL) {
		ctl_err("out of memory");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	cfg_argv[0] = argv[0];
	/* Options before the command: configuration keys for app_config_load, and --sql-dir. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		int t;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			ctl_usage(stdout);
			rc = CTL_EXIT_OK;
			goto out;
		}
		if ((t = ctl_take_opt(&c, OPTBIT(OPT_SQL_DIR), argc, argv, &i)) != 0) {
			if (t < 0)
				goto out;
			continue;
		}
		cfg_argv[cfg_argc++] = argv[i];
		if (strchr(argv[i], '=') == NULL && i + 1 < argc)
			cfg_argv[cfg_argc++] = argv[++i];
	}
	if (i >= argc) {
		ctl_usage(stderr);
		goto out;
	}
	for (size_t k = 0; k < CTL_NCMDS && !cmd; k++) {
		if (strcmp(argv[i], ctl_cmds[k].name) != 0)
			continue;
		if (ctl_cmds[k].sub == NULL)
			cmd = &ctl_cmds[k];
		else if (i + 1 < argc && strcmp(argv[i + 1], ctl_cmds[k].sub) == 0)
			cmd = &ctl_cmds[k];
	}
	if (cmd == NULL) {
		ctl_err("unknown command '%s%s%s'", argv[i], i + 1 < argc ? " " : "",
			i + 1 < argc ? argv[i + 1] : "");
		ctl_usage(stderr);
		goto out;
	}
	i += cmd->sub ? 2 : 1;
	for (; i < argc; i++) {
		int t;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: ideaforgectl [--config FILE] [--key=value...] %s\n",
			       cmd->synopsis);
			rc = CTL_EXIT_OK;
			goto out;
		}
		if ((t = ctl_take_opt(&c, cmd->allowed, argc, argv, &i)) < 0)
			goto out;
		if (t == 0) {
			ctl_err("%s%s%s: unexpected argument '%s'", cmd->name, cmd->sub ? " " : "",
				cmd->sub ? cmd->sub : "", argv[i]);
			goto out;
		}
	}
	for (int o = 0; o < OPT__MAX; o++) {
		if ((cmd->required & OPTBIT(o)) && c.opt[o] == NULL) {
			ctl_err("%s%s%s: %s is required", cmd->name, cmd->sub ? " " : "",
				cmd->sub ? cmd->sub : "", ctl_opts[o].name);
			goto out;
		}
	}

	if (app_config_load(cfg_argc, cfg_argv, &srv, &appv, err, sizeof err) < 0) {
		ctl_err("configuration: %s", err);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	app = appv;
	c.conninfo = srv->database_url ? srv->database_url : "";
	c.sql_dir = c.opt[OPT_SQL_DIR] ? c.opt[OPT_SQL_DIR] : app->sql_dir;
	c.pw = (struct pw_params){.m_kib = (uint32_t)app->argon2_memory_kib,
				  .t = (uint32_t)app->argon2_iterations,
				  .p = (uint32_t)app->argon2_parallelism};
	c.password_min_length = app->password_min_length;
	c.srv = srv;
	c.session_cache_ttl_s = app->session_cache_ttl_s;
	if (c.sql_dir == NULL || c.sql_dir[0] == '\0')
		c.sql_dir = ".";
	rc = cmd->run(&c);
out:
	app_config_free(srv, appv);
	free(cfg_argv);
	return rc;
}
