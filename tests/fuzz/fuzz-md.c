/* fuzz-md.c - the Markdown renderer (lib/md.h) on any bytes: a model's answer is untrusted.
 *
 * Checks what md.h promises: the output is the renderer's own markup only, every '<' opens
 * one of its tags, so nothing of the input can become markup or an attribute.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "md.h"
#include "../unit/md-tags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *md = malloc(size + 1);
	if (!md)
		return 0;
	memcpy(md, data, size);
	md[size] = '\0'; /* md_html reads a C string: up to the first NUL */
	struct buf b;
	buf_init(&b, NULL);
	md_html(&b, md);
	if (md_foreign_markup(b.p))
		__builtin_trap();
	buf_free(&b);
	free(md);
	return 0;
}
