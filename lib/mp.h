/* mp.h - multipart/form-data request bodies (RFC 7578, the framing of RFC 2046 section 5.1).
 *
 * The body is split in place: parts point into it, nothing is copied but the header values.
 * Hostile input first: the boundary is 1 to 70 characters, a part's header block is at most
 * MP_MAX_HEADER_BYTES, the number of parts is bounded by the caller, a NUL in a header or a
 * missing delimiter makes the whole body malformed.
 */
#ifndef IF_MP_H
#define IF_MP_H

#include <stddef.h>

struct arena;

#define MP_MAX_HEADER_BYTES 8192 /* one part's header block */

struct mp_part {
	const char *name;     /* form field name (arena), "" when absent */
	const char *filename; /* file name as sent (arena), NULL for a plain field */
	const char *ctype;    /* Content-Type of the part, lower-case, no parameters; NULL */
	const char *data;     /* content, inside the body (not NUL-terminated) */
	size_t len;           /* content length */
};

/* The boundary parameter of a multipart/form-data content type ct, as an arena string; NULL
 * when ct is not multipart/form-data or its boundary is missing or not 1 to 70 characters. */
const char *mp_boundary(struct arena *a, const char *ct);

/* Splits body (len bytes; borrowed, must outlive parts) on boundary into at most max parts.
 * Returns the number of parts, or -1 when malformed (no delimiter, a bad header block, more
 * than max parts, no close delimiter). Header values are allocated from a. */
int mp_parse(struct arena *a, const char *body, size_t len, const char *boundary,
	     struct mp_part *parts, int max);

#endif
