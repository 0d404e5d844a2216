/* mp.c - multipart/form-data bodies (RFC 7578 over RFC 2046 section 5.1), parsed in place. */
#include "mp.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "arena.h"

const char *mp_boundary(struct arena *a, const char *ct)
{
	if (!ct)
		return NULL;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "multipart/form-data", 19) != 0)
		return NULL;
	const char *p = ct + 19;
	while ((p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "boundary=", 9) != 0)
			continue;
		p += 9;
		size_t n;
		if (*p == '"') {
			const char *q = strchr(p + 1, '"');
			if (!q)
				return NULL;
			p++;
			n = (size_t)(q - p);
		} else {
			n = strcspn(p, "; \t");
		}
		/* RFC 2046 section 5.1.1: 1 to 70 characters */
		if (n < 1 || n > 70)
			return NULL;
		return arena_strndup(a, p, n);
	}
	return NULL;
}

/* Value of parameter key (name, filename) in a Content-Disposition value; quoted strings may
 * escape with a backslash. NULL when absent. */
static const char *mp_param(struct arena *a, const char *v, const char *key)
{
	size_t klen = strlen(key);
	const char *p = v;
	while ((p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, key, klen) != 0 || p[klen] != '=')
			continue;
		p += klen + 1;
		if (*p != '"')
			return arena_strndup(a, p, strcspn(p, "; \t"));
		p++;
		char *out = arena_alloc(a, strlen(p) + 1), *o = out;
		for (; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			*o++ = *p;
		}
		*o = '\0';
		return out;
	}
	return NULL;
}

/* Parses the header block [h, end) of one part into pt. 0 or -1. */
static int mp_headers(struct arena *a, const char *h, const char *end, struct mp_part *pt)
{
	while (h < end) {
		const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
		if (!eol)
			eol = end;
		char *line = arena_strndup(a, h, (size_t)(eol - h));
		if (strlen(line) != (size_t)(eol - h))
			return -1; /* NUL in a header */
		char *colon = strchr(line, ':');
		if (!colon)
			return -1;
		*colon = '\0';
		char *val = colon + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		if (strcasecmp(line, "Content-Disposition") == 0) {
			if (strncasecmp(val, "form-data", 9) != 0)
				return -1;
			const char *name = mp_param(a, val, "name");
			pt->name = name ? name : "";
			pt->filename = mp_param(a, val, "filename");
		} else if (strcasecmp(line, "Content-Type") == 0) {
			char *ct = arena_strndup(a, val, strcspn(val, "; \t"));
			for (char *c = ct; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			pt->ctype = ct;
		}
		h = eol + 2;
	}
	return 0;
}

int mp_parse(struct arena *a, const char *body, size_t len, const char *boundary,
	     struct mp_part *parts, int max)
{
	if (!body)
		body = "";
	const char *end = body + len;
	char *delim = arena_printf(a, "\r\n--%s", boundary); /* the CRLF belongs to it */
	size_t dlen = strlen(delim);
	const char *p;
	/* the first delimiter may start the body (no preamble), so without its CRLF */
	if ((size_t)(end - body) >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
		p = body + dlen - 2;
	} else {
		p = memmem(body, (size_t)(end - body), delim, dlen);
		if (!p)
			return -1;
		p += dlen;
	}
	int n = 0;
	for (;;) {
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return n; /* close delimiter; the epilogue is ignored */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++; /* transport padding */
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return -1;
		p += 2;
		if (n == max)
			return -1;
		struct mp_part *pt = &parts[n];
		memset(pt, 0, sizeof(*pt));
		pt->name = "";
		const char *data;
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
			data = p + 2; /* no headers */
		} else {
			size_t look = (size_t)(end - p);
			if (look > MP_MAX_HEADER_BYTES)
				look = MP_MAX_HEADER_BYTES;
			const char *hend = memmem(p, look, "\r\n\r\n", 4);
			if (!hend || mp_headers(a, p, hend, pt) < 0)
				return -1;
			data = hend + 4;
		}
		const char *dend = memmem(data, (size_t)(end - data), delim, dlen);
		if (!dend)
			return -1;
		pt->data = data;
		pt->len = (size_t)(dend - data);
		n++;
		p = dend + dlen;
	}
}
