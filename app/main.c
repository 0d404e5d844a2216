/* main.c - ideaforge-api: wires IdeaForge's configuration and route table into lib's server. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "pcache.h"
#include "../lib/srv_main.h"
#include "app.h"
#include "products.h" /* keys_config_check */
#include "ai.h"
#include "session.h"
#include "wstate.h"

/* The configuration plus the start-up checks of ideaforge-api alone (ideaforgectl shares the
 * loader but needs no signing secret): without a JWT secret of 32 bytes the master refuses to
 * start (exit 2), and a reload that loses it is refused. */
static int load(int argc, char **argv, struct srv_config **srv, void **app, char *err,
		size_t errlen)
{
	if (app_config_load(argc, argv, srv, app, err, errlen) < 0)
		return -1;
	/* both secrets are required: the server refuses to start rather than run without them */
	/* the server-wide provider keys are read here, in the master, so every worker forked
	 * after (and after a reload) has them; an unreadable key file refuses the start */
	if (session_config_check(*app, err, errlen) < 0 ||
	    keys_config_check(*app, err, errlen) < 0 || ai_init(*app, err, errlen) < 0) {
		app_config_free(*srv, *app);
		*srv = NULL;
		*app = NULL;
		return -1;
	}
	return 0;
}

/* --list-routes: the route table, one "METHOD PATTERN FLAGS RL_CLASS" line per route (flags
 * comma-separated, "-" for none), for the auth-coverage test (tests/api). */
static int list_routes(void)
{
	static const char *const flag_names[] = {"auth",     "json",       "raw",
						 "strict",   "stream",     "optbody",
						 "internal", "idempotent", "product"};
	static const char *const rl_names[RL__MAX] = {
		[RL_DEFAULT] = "default", [RL_LOGIN] = "login", [RL_AI] = "ai", [RL_NONE] = "none"};
	for (size_t i = 0; i < app_nroutes; i++) {
		const struct route *rt = &app_routes[i];
		char flags[96] = "";
		size_t n = 0;
		for (size_t b = 0; b < sizeof(flag_names) / sizeof(flag_names[0]); b++)
			if (rt->flags & (1u << b))
				n += (size_t)snprintf(flags + n, sizeof(flags) - n, "%s%s",
						      n ? "," : "", flag_names[b]);
		int rc = rt->rl_class;
		printf("%s %s %s %s\n", http_method_names[rt->method], rt->pattern, n ? flags : "-",
		       rc >= 0 && rc < RL__MAX ? rl_names[rc] : "?");
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

static const struct srv_app ideaforge = {
	.name = "ideaforge-api",
	.version = PACKAGE_VERSION,
	.routes = app_routes,
	.nroutes = 0, /* set in main: the table size is not a constant expression here */
	.config_load = load,
	.config_free = app_config_free,
	.worker_init = app_worker_init,
	.worker_fini = app_worker_fini,
	.before = app_before,
	.committed = pcache_committed,
};

static void usage(void)
{
	/* clang-format off */
	puts("usage: ideaforge-api [--config FILE] [--KEY=VALUE ...]\n"
	     "       ideaforge-api -t|-T [--config FILE] [--KEY=VALUE ...]\n"
	     "       ideaforge-api --print-config [--config FILE] [--KEY=VALUE ...]\n"
	     "       ideaforge-api --list-routes | --version | -V | --help | -h\n"
	     "\n"
	     "FastCGI application server of IdeaForge. Every configuration key can be set in the\n"
	     "file, as environment variable IDEAFORGE_<KEY>, or as a flag (--listen unix:/path).\n"
	     "\n"
	     "  --config FILE   configuration file (default " IF_SYSCONFDIR "/ideaforge/ideaforge.conf,\n"
	     "                  or $IDEAFORGE_CONFIG)\n"
	     "  -t              test the configuration as a start would (secrets, key files,\n"
	     "                  cross-field rules) and exit: 0 when it is valid, 2 when not\n"
	     "  -T              the same, then print the effective configuration (secrets and\n"
	     "                  passwords masked)\n"
	     "  --print-config  print every key with its help and effective value, secrets masked\n"
	     "                  (no start-up checks: also for a configuration without secrets)\n"
	     "  --list-routes   print the route table: method, pattern, flags, rate-limit class\n"
	     "  --version, -V   print the version and exit\n"
	     "\n"
	     "Signals: TERM/INT graceful stop, HUP reload, QUIT immediate stop.\n"
	     "Exit status: 0 stopped cleanly, 1 runtime failure, 2 bad configuration or socket.");
	/* clang-format on */
}

/* Drops argv[i], keeping the order of everything else. */
static void drop_arg(int *argc, char **argv, int i)
{
	for (int j = i; j < *argc - 1; j++)
		argv[j] = argv[j + 1];
	(*argc)--;
}

/* -t / -T: the checks of a start, without starting. */
static int test_config(int argc, char **argv, bool print)
{
	struct srv_config *srv;
	void *app;
	char err[512];
	if (load(argc, argv, &srv, &app, err, sizeof(err)) < 0 ||
	    srv_config_validate(srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "ideaforge-api: %s\nideaforge-api: configuration test failed\n",
			err);
		return 2;
	}
	if (print)
		app_config_dump(srv, app);
	app_config_free(srv, app);
	fprintf(stderr, "ideaforge-api: configuration test is successful\n");
	return 0;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage();
			return 0;
		}
		if (strcmp(argv[i], "--list-routes") == 0)
			return list_routes();
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("ideaforge-api %s\n", PACKAGE_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "-t") == 0 || strcmp(argv[i], "-T") == 0) {
			bool print = argv[i][1] == 'T';
			drop_arg(&argc, argv, i);
			return test_config(argc, argv, print);
		}
		if (strcmp(argv[i], "--print-config") == 0) {
			struct srv_config *srv;
			void *app;
			char err[512];
			drop_arg(&argc, argv, i);
			if (app_config_load(argc, argv, &srv, &app, err, sizeof(err)) < 0 ||
			    srv_config_validate(srv, err, sizeof(err)) < 0) {
				fprintf(stderr, "ideaforge-api: %s\n", err);
				return 2;
			}
			app_config_dump(srv, app);
			app_config_free(srv, app);
			return 0;
		}
	}
	struct srv_app a = ideaforge;
	a.nroutes = app_nroutes;
	if (app_master_init() < 0) {
		fprintf(stderr, "ideaforge-api: cannot map the shared rate-limit table\n");
		return 1;
	}
	return srv_main(&a, argc, argv);
}
