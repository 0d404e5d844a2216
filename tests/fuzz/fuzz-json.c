/* fuzz-json.c - JSON request bodies against every route's body contract (app/routes.c).
 *
 * The same steps as http_parse_json(): jx_nodes (the cap counted before parsing), jx_parse
 * with the server's default depth, then jx_validate against each route that declares a body
 * contract, strict or not as the route says; a valid body is serialised back (jx_str). The
 * input's first byte picks nothing: every contract sees every body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "jx.h"
#include "route.h"

extern const struct route app_routes[];
extern const size_t app_nroutes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the server hands a NUL-terminated copy (http_read_body) */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (jx_nodes(s, size) <= 20000) {
		struct json_object *o = jx_parse(s, size, 32);
		if (o) {
			size_t n;
			(void)jx_str(o, &n);
			for (size_t i = 0; i < app_nroutes; i++) {
				const struct route *rt = &app_routes[i];
				if (!rt->body)
					continue;
				struct json_object *errs = NULL;
				if (!jx_validate(o, rt->body, (rt->flags & ROUTE_STRICT) != 0,
						 &errs)) {
					if (errs)
						(void)jx_str(errs, &n);
					json_object_put(errs);
				}
			}
			(void)jx_get_str(o, "product_id");
			(void)jx_get_int(o, "limit", 0);
			(void)jx_get_bool(o, "stream", false);
			json_object_put(o);
		}
	}
	free(s);
	return 0;
}
