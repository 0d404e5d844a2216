/* ctl.h - what the commands of ideaforgectl share (app/ideaforgectl.c: main and the helpers;
 * one file per command group: app/ctl_migrate.c, app/ctl_seed.c, app/ctl_user.c).
 *
 * An operator's tool: failures print PostgreSQL's own message to stderr, prefixed with
 * "ideaforgectl: " and what was being done, and a command returns its exit status.
 *
 * SQL goes through the kit's helpers (lib/db.h) on a struct ctx whose pool is a tool's
 * (db_pool_opts.tool): one connection, PostgreSQL's messages kept for ctl_db_err (db_error)
 * instead of logged, its notices printed to stderr as libpq prints them.
 */
#ifndef IF_APP_CTL_H
#define IF_APP_CTL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ctx.h"
#include "db.h"
#include "pw.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

/* The options a command may take (ctl_opts in app/ideaforgectl.c spells them). */
enum ctl_opt {
	OPT_SQL_DIR,        /* --sql-dir DIR */
	OPT_EMAIL,          /* --email E */
	OPT_NAME,           /* --name N */
	OPT_TENANT,         /* --tenant SLUG */
	OPT_PERSONA,        /* --persona P */
	OPT_PASSWORD_STDIN, /* --password-stdin */
	OPT_OLD_KEY_FILE,   /* --old-key-file F */
	OPT__MAX
};

#define OPTBIT(o) (1u << (o))

/* Everything a command needs; filled by main() from the command line and the configuration. */
struct ctl {
	const char *opt[OPT__MAX];    /* option values; "" for a given flag, NULL when absent */
	const char *conninfo;         /* libpq connection string (borrowed from the config) */
	const char *sql_dir;          /* migrations directory (borrowed) */
	struct pw_params pw;          /* argon2id parameters of new hashes */
	int64_t password_min_length;  /* in characters */
	const struct srv_config *srv; /* server section: redis_url and its timeouts (borrowed) */
	int64_t session_cache_ttl_s;  /* lifetime of cached session checks (app_config) */
	const struct app_config *app; /* the whole application section (borrowed) */
};

/* --- the commands: each returns its exit status (CTL_EXIT_*) --------------------------- */

int ctl_migrate_run(struct ctl *c);     /* migrate (app/ctl_migrate.c) */
int ctl_seed_demo(struct ctl *c);       /* seed-demo (app/ctl_seed.c) */
int ctl_user_add(struct ctl *c);        /* user add (app/ctl_user.c) */
int ctl_user_passwd(struct ctl *c);     /* user passwd */
int ctl_user_deactivate(struct ctl *c); /* user deactivate */
int ctl_user_activate(struct ctl *c);   /* user activate */
int ctl_keys_reseal(struct ctl *c);     /* keys reseal (app/ctl_keys.c) */

/* --- shared helpers (app/ideaforgectl.c) ----------------------------------------------- */

/* Prints "ideaforgectl: <message>\n" to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints PostgreSQL's message of x's last failure (db_error; x->detail when there is none),
 * prefixed with what we were doing: "ideaforgectl: <what>: <message>". */
void ctl_db_err(const struct ctx *x, const char *what);

/* Prints the failure of a file's SQL run by db_exec_script: "ideaforgectl: <path>:<line>:
 * <message>", the line found from the statement position PostgreSQL reports in sql (the
 * file's text), or without ":<line>" when it reports none. */
void ctl_script_err(const struct ctx *x, const char *path, const char *sql);

/* Connects with the configured connection string: x becomes a context over its own arena and
 * a tool's pool of one connection, with the tool's session settings (application_name
 * ideaforgectl, no NOTICE chatter, no statement timeout). 0, or -1 with the message printed;
 * either way ctl_disconnect(x) ends it. */
int ctl_connect(const struct ctl *c, struct ctx *x);

/* Ends what ctl_connect made (an open transaction is rolled back, the connection closed, which
 * also releases the advisory lock). Accepts a zeroed context. */
void ctl_disconnect(struct ctx *x);

/* Takes the session advisory lock of migrate and seed-demo, saying so when another process
 * holds it (then waits). 0 or -1 (message printed). Released when the connection ends. */
int ctl_lock(struct ctx *x);

/* Reads a whole SQL file (a regular file of at most 16 MiB without NUL bytes) into a
 * NUL-terminated malloc'd buffer (owned: free) and *len_out. NULL with a message. */
char *ctl_read_file(const char *path, size_t *len_out);

/* SHA-256 of data as 64 lower-case hex digits and a NUL. 0 or -1. */
int ctl_sha256_hex(const char *data, size_t len, char hex[65]);

#endif
