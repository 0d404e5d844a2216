/* ctl_seed.c - `ideaforgectl seed-demo`: the demo data of DIR/seed/demo.sql, idempotent
 * (ctl.h). */
#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "pw.h"

#define CTL_DEMO_PASSWORD "password123" /* documented demo password (API.md 2.2) */

int ctl_seed_demo(struct ctl *c)
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

