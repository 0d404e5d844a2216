/* fuzz-config.c - the configuration file: app_config_load (lib/cfg.c's parser over every key
 * of ideaforge-api and the kit) on the input as the file, then cfg_dump and the free.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "app.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	if (devnull < 0)
		devnull = open("/dev/null", O_WRONLY);
	int fd = memfd_create("fuzz-config", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	char *argv[] = {"ideaforge-api", "--config", path, NULL};
	struct srv_config *srv = NULL;
	void *app = NULL;
	char err[512];
	if (app_config_load(3, argv, &srv, &app, err, sizeof(err)) == 0) {
		/* --print-config's path: every value written out, secrets masked */
		int saved = dup(STDOUT_FILENO);
		dup2(devnull, STDOUT_FILENO);
		app_config_dump(srv, app);
		fflush(stdout);
		dup2(saved, STDOUT_FILENO);
		close(saved);
		app_config_free(srv, app);
	}
	close(fd);
	return 0;
}
