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
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "ctl.h"

/* Key of the session advisory lock taken by migrate and seed-demo: the bytes "IdeaFrge" read
 * as a big-endian int64, a constant no other user of the database should pick by chance. */
#define CTL_LOCK_KEY "5288463330907940709"

#define CTL_MAX_SQL_BYTES (16 * 1024 * 1024) /* refuse absurd files rather than load them */

static const struct {
	const char *name; /* as typed, with the dashes */
	bool has_arg;     /* takes a value (--opt V or --opt=V) */
} ctl_opts[OPT__MAX] = {
	[OPT_SQL_DIR] = {"--sql-dir", true},
	[OPT_EMAIL] = {"--email", true},
	[OPT_NAME] = {"--name", true},
	[OPT_TENANT] = {"--tenant", true},
	[OPT_PERSONA] = {"--persona", true},
	[OPT_PASSWORD_STDIN] = {"--password-stdin", false},
	[OPT_OLD_KEY_FILE] = {"--old-key-file", true},
};

struct ctl_cmd {
	const char *name;          /* first word */
	const char *sub;           /* second word, or NULL */
	int (*run)(struct ctl *c); /* returns the exit status */
	unsigned allowed;          /* OPTBIT set of accepted options */
	unsigned required;         /* OPTBIT set of mandatory options */
	const char *synopsis;      /* one line of the usage text */
};

static const struct ctl_cmd ctl_cmds[] = {
	{"migrate", NULL, ctl_migrate_run, OPTBIT(OPT_SQL_DIR), 0, "migrate [--sql-dir DIR]"},
	{"seed-demo", NULL, ctl_seed_demo, OPTBIT(OPT_SQL_DIR), 0, "seed-demo [--sql-dir DIR]"},
	{"user", "add", ctl_user_add,
	 OPTBIT(OPT_EMAIL) | OPTBIT(OPT_NAME) | OPTBIT(OPT_TENANT) | OPTBIT(OPT_PERSONA) |
		 OPTBIT(OPT_PASSWORD_STDIN),
	 OPTBIT(OPT_EMAIL) | OPTBIT(OPT_NAME),
	 "user add --email E --name N [--tenant SLUG] [--persona P] [--password-stdin]"},
	{"user", "passwd", ctl_user_passwd, OPTBIT(OPT_EMAIL) | OPTBIT(OPT_PASSWORD_STDIN),
	 OPTBIT(OPT_EMAIL), "user passwd --email E [--password-stdin]"},
	{"user", "deactivate", ctl_user_deactivate, OPTBIT(OPT_EMAIL), OPTBIT(OPT_EMAIL),
	 "user deactivate --email E"},
	{"user", "activate", ctl_user_activate, OPTBIT(OPT_EMAIL), OPTBIT(OPT_EMAIL),
	 "user activate --email E"},
	{"keys", "reseal", ctl_keys_reseal, OPTBIT(OPT_OLD_KEY_FILE), OPTBIT(OPT_OLD_KEY_FILE),
	 "keys reseal --old-key-file F   (stored provider keys: from F's master key to the "
	 "configured one)"},
};

#define CTL_NCMDS (sizeof ctl_cmds / sizeof ctl_cmds[0])

static void ctl_usage(FILE *f)
{
	fprintf(f, "usage: ideaforgectl [--config FILE] [--key=value...] <command> [options]\n"
		   "       ideaforgectl --version | -V | --help | -h\n\n"
		   "commands:\n");
	for (size_t i = 0; i < CTL_NCMDS; i++)
		fprintf(f, "  %s\n", ctl_cmds[i].synopsis);
	fprintf(f, "\nPasswords are read from standard input (one line); on a terminal the tool\n"
		   "prompts without echo unless --password-stdin is given.\n"
		   "The migrations directory is --sql-dir, else the sql_dir key (env "
		   "IDEAFORGE_SQL_DIR).\n"
		   "Exit status: 0 done, 1 failed, 2 usage error.\n");
}

void ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("ideaforgectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Prints PostgreSQL's message of x's last failure, prefixed with what we were doing. */
void ctl_db_err(const struct ctx *x, const char *what)
{
	const char *m = db_error(x) ? db_error(x) : x->detail;
	size_t n = strlen(m);

	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	ctl_err("%s: %.*s", what, (int)n, n ? m : "unknown error");
}

/* The 1-based line of the 1-based character position pos in text (PostgreSQL reports
 * positions in characters, the file is UTF-8). */
static long line_of(const char *text, long pos)
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

/* Prints the failure of a file's SQL, with the line of the failing statement. */
void ctl_script_err(const struct ctx *x, const char *path, const char *sql)
{
	const char *pos = db_error_field(x, PG_DIAG_STATEMENT_POSITION);
	char what[4200];

	snprintf(what, sizeof what, "%s", path);
	if (pos)
		snprintf(what, sizeof what, "%s:%ld", path, line_of(sql, strtol(pos, NULL, 10)));
	ctl_db_err(x, what);
}

/* --- database helpers ---------------------------------------------------------------------- */

/* Connects with the configured connection string; -1 with a message on failure. */
int ctl_connect(const struct ctl *c, struct ctx *x)
{
	const struct db_pool_opts o = {
		.conninfo = c->conninfo,
		.size = 1,
		.timeout_ms = 1000, /* one thread, one connection: never waited for */
		.application_name = "ideaforgectl",
		.tool = true,
	};
	struct arena *a = arena_new(16384);
	struct db_pool *pool = db_pool_new(&o);

	ctx_init(x, a, pool, "ideaforgectl");
	if (a == NULL || pool == NULL) {
		ctl_err("connect: out of memory");
		return -1;
	}
	/* Our own session settings: no NOTICE chatter ("... does not exist, skipping"), and
	 * no statement timeout a role or database may carry for the application. */
	if (db_exec_script(x, "SET client_min_messages = warning; SET statement_timeout = 0") ==
	    NULL) {
		ctl_db_err(x, "connect");
		return -1;
	}
	return 0;
}

void ctl_disconnect(struct ctx *x)
{
	db_done(x);
	db_pool_free(x->pool);
	arena_free(x->a);
	x->pool = NULL;
	x->a = NULL;
}

/* Takes the migration lock, saying so when another process holds it. 0 or -1. */
int ctl_lock(struct ctx *x)
{
	const char *const p[] = {CTL_LOCK_KEY};
	const char *got = db_value(x, NULL, "SELECT pg_try_advisory_lock($1::bigint)", 1, p);

	if (got == NULL) {
		ctl_db_err(x, "lock");
		return -1;
	}
	if (strcmp(got, "t") == 0)
		return 0;
	fprintf(stderr, "ideaforgectl: waiting for another ideaforgectl to finish...\n");
	if (db_exec(x, "SELECT pg_advisory_lock($1::bigint)", 1, p) == NULL) {
		ctl_db_err(x, "lock");
		return -1;
	}
	return 0;
}

/* --- files ------------------------------------------------------------------------------- */

/* Reads a whole SQL file into a NUL-terminated malloc'd buffer. NULL with a message. */
char *ctl_read_file(const char *path, size_t *len_out)
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
int ctl_sha256_hex(const char *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
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

/* Is argv[i] a request for help? */
static bool is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* The options before the command, from *i on: --sql-dir into c, the others (configuration
 * keys, with their value when it is a separate word) appended to cfg_argv. Returns -1 to go
 * on with the command at argv[*i], else the exit status (--help, a missing value). */
static int global_opts(struct ctl *c, int argc, char **argv, int *i, char **cfg_argv, int *cfg_argc)
{
	for (; *i < argc && argv[*i][0] == '-'; (*i)++) {
		if (is_help(argv[*i])) {
			ctl_usage(stdout);
			return CTL_EXIT_OK;
		}
		if (strcmp(argv[*i], "--version") == 0 || strcmp(argv[*i], "-V") == 0) {
			printf("ideaforgectl %s\n", PACKAGE_VERSION);
			return CTL_EXIT_OK;
		}
		int t = ctl_take_opt(c, OPTBIT(OPT_SQL_DIR), argc, argv, i);
		if (t < 0)
			return CTL_EXIT_USAGE;
		if (t > 0)
			continue;
		cfg_argv[(*cfg_argc)++] = argv[*i];
		if (strchr(argv[*i], '=') == NULL && *i + 1 < argc)
			cfg_argv[(*cfg_argc)++] = argv[++*i];
	}
	return -1;
}

/* The command named at argv[i] (one or two words), or NULL with the usage printed. */
static const struct ctl_cmd *find_cmd(int argc, char **argv, int i)
{
	if (i >= argc) {
		ctl_usage(stderr);
		return NULL;
	}
	for (size_t k = 0; k < CTL_NCMDS; k++) {
		if (strcmp(argv[i], ctl_cmds[k].name) != 0)
			continue;
		if (ctl_cmds[k].sub == NULL ||
		    (i + 1 < argc && strcmp(argv[i + 1], ctl_cmds[k].sub) == 0))
			return &ctl_cmds[k];
	}
	ctl_err("unknown command '%s%s%s'", argv[i], i + 1 < argc ? " " : "",
		i + 1 < argc ? argv[i + 1] : "");
	ctl_usage(stderr);
	return NULL;
}

/* The command's own options from argv[i] on, then the check of the required ones. Returns -1
 * to run the command, else the exit status (--help, a usage error). */
static int cmd_opts(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv, int i)
{
	const char *sp = cmd->sub ? " " : "", *sub = cmd->sub ? cmd->sub : "";
	for (; i < argc; i++) {
		if (is_help(argv[i])) {
			printf("usage: ideaforgectl [--config FILE] [--key=value...] %s\n",
			       cmd->synopsis);
			return CTL_EXIT_OK;
		}
		int t = ctl_take_opt(c, cmd->allowed, argc, argv, &i);
		if (t < 0)
			return CTL_EXIT_USAGE;
		if (t == 0) {
			ctl_err("%s%s%s: unexpected argument '%s'", cmd->name, sp, sub, argv[i]);
			return CTL_EXIT_USAGE;
		}
	}
	for (int o = 0; o < OPT__MAX; o++) {
		if ((cmd->required & OPTBIT(o)) && c->opt[o] == NULL) {
			ctl_err("%s%s%s: %s is required", cmd->name, sp, sub, ctl_opts[o].name);
			return CTL_EXIT_USAGE;
		}
	}
	return -1;
}

/* What the commands take from the configuration (borrowed from srv and app). */
static void configure(struct ctl *c, const struct srv_config *srv, const struct app_config *app)
{
	c->conninfo = srv->database_url ? srv->database_url : "";
	c->sql_dir = c->opt[OPT_SQL_DIR] ? c->opt[OPT_SQL_DIR] : app->sql_dir;
	if (c->sql_dir == NULL || c->sql_dir[0] == '\0')
		c->sql_dir = ".";
	c->pw = (struct pw_params){.m_kib = (uint32_t)app->argon2_memory_kib,
				   .t = (uint32_t)app->argon2_iterations,
				   .p = (uint32_t)app->argon2_parallelism};
	c->password_min_length = app->password_min_length;
	c->srv = srv;
	c->session_cache_ttl_s = app->session_cache_ttl_s;
	c->app = app;
}

int main(int argc, char **argv)
{
	struct ctl c = {0};
	struct srv_config *srv = NULL;
	void *appv = NULL;
	const struct ctl_cmd *cmd;
	char **cfg_argv = NULL, err[512];
	int cfg_argc = 1, i = 1, rc = CTL_EXIT_FAIL;

	if ((cfg_argv = calloc((size_t)argc + 1, sizeof *cfg_argv)) == NULL) {
		ctl_err("out of memory");
		goto out;
	}
	cfg_argv[0] = argv[0];
	if ((rc = global_opts(&c, argc, argv, &i, cfg_argv, &cfg_argc)) >= 0)
		goto out;
	rc = CTL_EXIT_USAGE;
	if ((cmd = find_cmd(argc, argv, i)) == NULL)
		goto out;
	if ((rc = cmd_opts(&c, cmd, argc, argv, i + (cmd->sub ? 2 : 1))) >= 0)
		goto out;
	if (app_config_load(cfg_argc, cfg_argv, &srv, &appv, err, sizeof err) < 0) {
		ctl_err("configuration: %s", err);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	configure(&c, srv, appv);
	rc = cmd->run(&c);
out:
	app_config_free(srv, appv);
	free(cfg_argv);
	return rc;
}
