/* srv_main.c - the program's entry point: configuration, the listening sockets, the
 * scoreboard, then the process manager (lib/pm.c) until the server stops.
 *
 * Its own module so that the includes of lib stay a graph without cycles: srv (settings and
 * contexts) is used by pm, worker and http; srv_main uses pm, never the other way round.
 */
#include "srv_main.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "pm.h"
#include "sb.h"
#include "sysd.h"

/* Binds address l ("unix:/path" or "host:port"); -1 with err. */
static int bind_listen(const struct srv_config *c, const char *l, char *err, size_t errlen)
{
	int fd = -1;
	if (strncmp(l, "unix:", 5) == 0) {
		const char *path = l + 5;
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(path) >= sizeof(sa.sun_path) || *path == '\0') {
			snprintf(err, errlen, "listen: bad unix socket path '%s'", path);
			return -1;
		}
		strcpy(sa.sun_path, path);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path); /* a stale socket from a previous run */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			snprintf(err, errlen, "listen: cannot bind %s: %s", path, strerror(errno));
			goto fail;
		}
		chmod(path, (mode_t)c->socket_mode);
	} else {
		char host[256];
		const char *colon = strrchr(l, ':');
		size_t hl = (size_t)(colon - l);
		if (hl >= sizeof(host)) {
			snprintf(err, errlen, "listen: bad address '%s'", l);
			return -1;
		}
		memcpy(host, l, hl);
		host[hl] = '\0';
		char *h = host;
		if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
			h[hl - 1] = '\0';
			h++;
		}
		struct addrinfo hints = {.ai_family = AF_UNSPEC,
					 .ai_socktype = SOCK_STREAM,
					 .ai_flags = AI_PASSIVE},
				*ai = NULL;
		int gai = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &ai);
		if (gai != 0) {
			snprintf(err, errlen, "listen: cannot resolve '%s': %s", l,
				 gai_strerror(gai));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			snprintf(err, errlen, "listen: cannot bind %s: %s", l, strerror(errno));
			freeaddrinfo(ai);
			goto fail;
		}
		freeaddrinfo(ai);
	}
	if (listen(fd, (int)c->listen_backlog) < 0) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		goto fail;
	}
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static int is_socket(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int setup_socket(const struct srv_config *c, char *err, size_t errlen)
{
	int fd;
	if (c->listen && *c->listen) {
		fd = bind_listen(c, c->listen, err, errlen);
	} else if ((fd = sysd_listen_fd()) >= 0) {
		log_msg(LL_INFO, NULL, "using the socket passed by systemd");
	} else if (is_socket(0)) {
		/* spawn-fcgi (and other FastCGI spawners) pass the listening socket as fd 0 */
		fd = dup(0);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0) {
			dup2(nul, 0);
			close(nul);
		}
		log_msg(LL_INFO, NULL, "using the socket passed on fd 0");
	} else {
		snprintf(err, errlen,
			 "no listening socket: set 'listen' (unix:/path or host:port), "
			 "or start under systemd socket activation or spawn-fcgi");
		return -1;
	}
	if (fd < 0)
		return -1;
	/* non-blocking: threads that lose the accept race get EAGAIN instead of blocking */
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* Root outside a container is a risk worth a line in the log (a container's root is the
 * container's business). */
static void warn_if_root(const char *name)
{
	if (geteuid() != 0)
		return;
	if (access("/.dockerenv", F_OK) == 0 || access("/run/.containerenv", F_OK) == 0 ||
	    getenv("container") || getenv("KUBERNETES_SERVICE_HOST"))
		return;
	log_msg(LL_WARN, NULL, "%s runs as root: run it as its own user (the systemd unit does)",
		name);
}

int srv_main(const struct srv_app *app, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s %s\n", app->name, app->version);
			return 0;
		}
	}
	struct srv_config *cfg = NULL;
	void *app_cfg = NULL;
	char err[512] = "";
	if (app->config_load(argc, argv, &cfg, &app_cfg, err, sizeof(err)) < 0 ||
	    srv_config_validate(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", app->name, err);
		if (cfg)
			app->config_free(cfg, app_cfg);
		return 2;
	}
	log_set_level((enum log_level)cfg->log_level);
	log_set_access(cfg->access_log);
	log_set_rate(cfg->log_rate_limit_per_s);
	warn_if_root(app->name);
	if (!cfg->redis_url || !*cfg->redis_url)
		log_msg(LL_INFO, NULL,
			"redis_url is empty: running without Redis (as if it were down)");
	int fd = setup_socket(cfg, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", app->name, err);
		app->config_free(cfg, app_cfg);
		return 2;
	}
	int ops_fd = -1;
	if (cfg->ops_listen && *cfg->ops_listen) {
		ops_fd = bind_listen(cfg, cfg->ops_listen, err, sizeof(err));
		if (ops_fd < 0) {
			fprintf(stderr, "%s: ops_listen: %s\n", app->name, err);
			app->config_free(cfg, app_cfg);
			return 2;
		}
		fcntl(ops_fd, F_SETFL, fcntl(ops_fd, F_GETFL) | O_NONBLOCK);
	}
	/* twice workers_max: during a reload the old and the new generation overlap */
	struct sb *sb = sb_create((int)cfg->workers_max * 2);
	if (!sb) {
		fprintf(stderr, "%s: cannot create the scoreboard\n", app->name);
		return 1;
	}
	char unix_path[256] = "", ops_path[256] = "";
	if (cfg->listen && strncmp(cfg->listen, "unix:", 5) == 0)
		snprintf(unix_path, sizeof(unix_path), "%s", cfg->listen + 5);
	if (ops_fd >= 0 && strncmp(cfg->ops_listen, "unix:", 5) == 0)
		snprintf(ops_path, sizeof(ops_path), "%s", cfg->ops_listen + 5);
	/* pm_run owns cfg from here (a reload replaces it) and frees it before returning */
	int code = pm_run(app, argc, argv, cfg, app_cfg, fd, ops_fd, sb);
	close(fd);
	if (ops_fd >= 0)
		close(ops_fd);
	if (*unix_path)
		unlink(unix_path);
	if (*ops_path)
		unlink(ops_path);
	sb_destroy(sb);
	return code;
}
