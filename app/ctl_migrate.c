/* ctl_migrate.c - `ideaforgectl migrate`: forward-only schema migrations (ctl.h).
 *
 * Each sql/NNNN_name.sql runs once, in its own transaction together with its
 * schema_migrations row, under a session advisory lock (ctl_lock) so that several machines may
 * run `migrate` at the same time (the others wait, then find nothing to do). An applied file
 * whose SHA-256 changed is refused: a change goes into a new file.
 */
#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define CTL_MAX_MIGRATIONS 10000 /* NNNN */

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
static int ctl_migration_apply(struct ctx *x, const char *dir, const struct ctl_migration *m)
{
	const char *const p[] = {m->version, m->name, m->sha};
	char what[4200];
	int rc = -1;

	snprintf(what, sizeof what, "%s/%s", dir, m->file);
	if (db_begin(x) != RC_OK) {
		ctl_db_err(x, what);
		goto out;
	}
	if (db_exec_script(x, m->sql) == NULL) {
		ctl_script_err(x, what, m->sql);
		goto out;
	}
	if (PQtransactionStatus(db_pg(x->db)) != PQTRANS_INTRANS) {
		ctl_err("%s: the file ended the transaction itself (COMMIT/ROLLBACK), so what ran "
			"before that is committed but not recorded; migrations must not contain "
			"transaction control: check the database by hand",
			what);
		goto out;
	}
	if (db_exec(x,
		    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
		    3, p) == NULL ||
	    db_commit(x) != RC_OK) {
		ctl_db_err(x, what);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && x->db && PQtransactionStatus(db_pg(x->db)) != PQTRANS_IDLE)
		db_rollback(x);
	/* A file's SET statements must not leak into the next file. */
	if (rc == 0 && db_exec_script(x, "RESET ALL; SET client_min_messages = warning; "
					 "SET statement_timeout = 0") == NULL) {
		ctl_db_err(x, what);
		rc = -1;
	}
	return rc;
}

int ctl_migrate_run(struct ctl *c)
{
	struct ctl_migration *m = NULL;
	size_t n = 0, napplied_now = 0;
	struct ctx x = {0};
	PGresult *res;
	const char *latest = NULL;
	int rc = CTL_EXIT_FAIL;

	if (ctl_migrations_load(c->sql_dir, &m, &n) < 0)
		goto out;
	if (n == 0) {
		ctl_err("%s: no NNNN_name.sql files", c->sql_dir);
		goto out;
	}
	if (ctl_connect(c, &x) < 0 || ctl_lock(&x) < 0)
		goto out;
	if (db_exec(&x,
		    "CREATE TABLE IF NOT EXISTS schema_migrations ("
		    " version text PRIMARY KEY CHECK (version ~ '^[0-9]{4}$'),"
		    " name text NOT NULL,"
		    " checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),"
		    " applied_at timestamptz NOT NULL DEFAULT now())",
		    0, NULL) == NULL ||
	    (res = db_exec(&x,
			   "SELECT version, name, checksum,"
			   " to_char(applied_at, 'YYYY-MM-DD HH24:MI:SSOF')"
			   " FROM schema_migrations ORDER BY version",
			   0, NULL)) == NULL) {
		ctl_db_err(&x, "schema_migrations");
		goto out;
	}
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
		if (ctl_migration_apply(&x, c->sql_dir, &m[i]) < 0)
			goto out;
		printf("applied %s\n", m[i].file);
		fflush(stdout);
		napplied_now++;
	}
	if (napplied_now == 0)
		printf("up to date (%s/%s)\n", m[n - 1].version, m[n - 1].name);
	rc = CTL_EXIT_OK;
out:
	ctl_disconnect(&x); /* also releases the advisory lock */
	ctl_migrations_free(m, n);
	return rc;
}
