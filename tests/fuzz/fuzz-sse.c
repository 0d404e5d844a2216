/* fuzz-sse.c - the Server-Sent Events parser (lib/sse.h), fed in chunks split anywhere.
 *
 * Input: first byte = chunk size seed, second = the event cap's size class, the rest = the
 * stream. The callback checks what the parser promises: data is NUL-terminated at data_len.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(void *u, const char *event, const char *data, size_t len, const char *id)
{
	size_t *count = u;
	if (!event || data[len] != '\0')
		__builtin_trap();
	(void)strlen(event);
	if (id)
		(void)strlen(id);
	return ++*count > 100000; /* stop like a consumer that had enough */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t step = (size_t)(data[0] % 17) + 1;
	size_t cap = data[1] & 1 ? 64 : 0; /* tiny cap, or the default */
	data += 2;
	size -= 2;
	size_t count = 0;
	struct sse_parser *p = sse_parser_new(cap, on_event, &count);
	if (!p)
		return 0;
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		if (sse_parser_feed(p, (const char *)data + off, n) != 0)
			break;
	}
	(void)sse_parser_feed(p, NULL, 0);
	sse_parser_free(p);
	return 0;
}
