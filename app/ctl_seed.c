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
	struct ctx x = {0};
	PGresult *res;
	const char *ok;
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
	if (ctl_connect(c, &x) < 0 || ctl_lock(&x) < 0)
		goto out;
	ok = db_value(&x, NULL, "SELECT to_regclass('public.user_profiles') IS NOT NULL", 0, NULL);
	if (ok == NULL) {
		ctl_db_err(&x, "schema check");
		goto out;
	}
	if (strcmp(ok, "t") != 0) {
		ctl_err("the database has no schema yet: run 'ideaforgectl migrate' first");
		goto out;
	}
	/* The file reads the hash with current_setting('ideaforge.demo_hash'); local to this
	 * transaction. */
	if (db_begin(&x) != RC_OK ||
	    db_exec(&x, "SELECT set_config('ideaforge.demo_hash', $1, true)", 1, p) == NULL) {
		ctl_db_err(&x, path);
		goto out;
	}
	if ((res = db_exec_script(&x, sql)) == NULL) {
		ctl_script_err(&x, path, sql);
		goto out;
	}
	if (PQtransactionStatus(db_pg(x.db)) != PQTRANS_INTRANS) {
		ctl_err("%s: the file ended the transaction itself", path);
		goto out;
	}
	if (db_commit(&x) != RC_OK) {
		ctl_db_err(&x, path);
		goto out;
	}
	/* The file ends with a SELECT of row counts: show them. */
	printf("demo data loaded from %s", path);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		for (int i = 0; i < PQnfields(res); i++)
			printf("%s %s=%s", i ? "" : ":", PQfname(res, i), PQgetvalue(res, 0, i));
	printf("\ndemo accounts (e.g. admin@ideaforge.ai) use the password '%s'\n",
	       CTL_DEMO_PASSWORD);
	rc = CTL_EXIT_OK;
out:
	ctl_disconnect(&x); /* rolls back what failed; releases the advisory lock */
	free(sql);
	return rc;
}
