/* fuzz-route.c - the route matcher over IdeaForge's table, and url_decode.
 *
 * Input: first byte = method, the rest = the request path (up to the first '?', as http_read
 * splits it). route_match percent-decodes the captured parameters; url_decode also runs on the
 * whole input both ways ('+' as space or not).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "route.h"

extern const struct route app_routes[];
extern const size_t app_nroutes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum http_method m = (enum http_method)(data[0] % HM__MAX);
	char *path = malloc(size);
	if (!path)
		return 0;
	memcpy(path, data + 1, size - 1);
	path[size - 1] = '\0';
	char *q = strchr(path, '?');
	if (q)
		*q = '\0';
	struct arena *a = arena_new(4096);
	struct route_match rm;
	route_match(app_routes, app_nroutes, m, path, a, &rm);
	if (rm.idx >= 0)
		for (int i = 0; i < rm.nparams; i++)
			(void)strlen(rm.values[i]);
	(void)url_decode(a, (const char *)data + 1, size - 1, 1);
	(void)url_decode(a, (const char *)data + 1, size - 1, 0);
	(void)http_method_parse(path);
	arena_free(a);
	free(path);
	return 0;
}
