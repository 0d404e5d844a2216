/* fuzz-multipart.c - multipart/form-data uploads (lib/mp.h), as POST /api/documents/upload
 * reads them.
 *
 * Input: the Content-Type header up to the first LF, then the body. When the header yields no
 * boundary, the body is still split on a fixed boundary, so the splitter is always exercised.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen = nl ? (size_t)(nl - data) : size;
	struct arena *a = arena_new(4096);
	char *ct = arena_strndup(a, (const char *)data, hlen);
	const char *boundary = mp_boundary(a, ct);
	if (!boundary)
		boundary = "XyZ";
	size_t blen = nl ? size - hlen - 1 : 0;
	/* the body is a heap copy of exactly its length (plus the NUL the reader adds), so a read
	 * past its end is caught */
	char *body = malloc(blen + 1);
	if (body) {
		memcpy(body, nl ? (const char *)nl + 1 : "", blen);
		body[blen] = '\0';
		struct mp_part parts[16];
		int n = mp_parse(a, body, blen, boundary, parts, 16);
		for (int i = 0; i < n; i++) {
			(void)strlen(parts[i].name);
			if (parts[i].filename)
				(void)strlen(parts[i].filename);
			if (parts[i].ctype)
				(void)strlen(parts[i].ctype);
			if (parts[i].len)
				(void)memchr(parts[i].data, 0, parts[i].len);
		}
		free(body);
	}
	arena_free(a);
	return 0;
}
