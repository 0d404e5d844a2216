/* route.c - segment matcher over the application's route table. */
#include "route.h"

#include <string.h>

#include "arena.h"
#include "jx.h"

const char *const http_method_names[HM__MAX + 1] = {
	[HM_GET] = "GET",     [HM_HEAD] = "HEAD",     [HM_POST] = "POST",       [HM_PUT] = "PUT",
	[HM_PATCH] = "PATCH", [HM_DELETE] = "DELETE", [HM_OPTIONS] = "OPTIONS", [HM__MAX] = NULL,
};

enum http_method http_method_parse(const char *s)
{
	if (!s)
		return HM__MAX;
	for (int i = 0; i < HM__MAX; i++)
		if (strcmp(s, http_method_names[i]) == 0)
			return (enum http_method)i;
	return HM__MAX;
}

char *url_decode(struct arena *a, const char *s, size_t n, int plus_space)
{
	char *out = arena_alloc(a, n + 1);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return NULL;
			int h = jx_hexval((unsigned char)s[i + 1]),
			    l = jx_hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return NULL;
			c = (char)(h * 16 + l);
			if (c == '\0')
				return NULL;
			i += 2;
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		out[j++] = c;
	}
	out[j] = '\0';
	return out;
}

/* Splits the next segment of *p (after a '/'); returns its length and advances. */
static size_t next_seg(const char **p, const char **seg)
{
	const char *s = *p;
	if (*s == '/')
		s++;
	const char *e = strchr(s, '/');
	size_t n = e ? (size_t)(e - s) : strlen(s);
	*seg = s;
	*p = s + n;
	return n;
}

/* Matches one pattern; returns the number of literal segments matched (for precedence), or
 * -1 when it does not match. Captures into m without allocating (pointers into path). */
static int match_one(const char *pattern, const char *path, const char **vals, size_t *vlens,
		     const char **names, size_t *nlens, int *nparams)
{
	const char *pp = pattern, *sp = path;
	int literal = 0;
	*nparams = 0;
	for (;;) {
		if (*pp == '\0' && *sp == '\0')
			return literal;
		if (*pp == '\0' || *sp == '\0') {
			/* tolerate one trailing slash on the path ("/api/" for "/api/") */
			return -1;
		}
		const char *ps, *ss;
		size_t pn = next_seg(&pp, &ps);
		size_t sn = next_seg(&sp, &ss);
		if (pn >= 2 && ps[0] == '{' && ps[pn - 1] == '}') {
			if (sn == 0 || *nparams >= ROUTE_MAX_PARAMS)
				return -1;
			names[*nparams] = ps + 1;
			nlens[*nparams] = pn - 2;
			vals[*nparams] = ss;
			vlens[*nparams] = sn;
			(*nparams)++;
		} else {
			if (pn != sn || memcmp(ps, ss, pn) != 0)
				return -1;
			literal++;
		}
	}
}

void route_match(const struct route *tbl, size_t n, enum http_method m, const char *path,
		 struct arena *a, struct route_match *out)
{
	const char *vals[ROUTE_MAX_PARAMS], *bvals[ROUTE_MAX_PARAMS];
	size_t vlens[ROUTE_MAX_PARAMS], bvlens[ROUTE_MAX_PARAMS];
	const char *names[ROUTE_MAX_PARAMS];
	size_t nlens[ROUTE_MAX_PARAMS];
	int best = -1, best_lit = -1, best_np = 0;
	enum http_method want = m == HM_HEAD ? HM_GET : m;

	memset(out, 0, sizeof(*out));
	out->idx = -1;
	for (size_t i = 0; i < n; i++) {
		int np;
		int lit = match_one(tbl[i].pattern, path, vals, vlens, names, nlens, &np);
		if (lit < 0)
			continue;
		out->allow |= 1u << tbl[i].method;
		if (tbl[i].method == HM_GET)
			out->allow |= 1u << HM_HEAD;
		if (tbl[i].method != want && !(m == HM_HEAD && tbl[i].method == HM_HEAD))
			continue;
		if (lit > best_lit) {
			best = (int)i;
			best_lit = lit;
			best_np = np;
			memcpy(bvals, vals, sizeof(vals));
			memcpy(bvlens, vlens, sizeof(vlens));
			memcpy(out->names, names, sizeof(names));
			memcpy(out->name_lens, nlens, sizeof(nlens));
		}
	}
	if (best < 0)
		return;
	out->idx = best;
	out->nparams = best_np;
	for (int i = 0; i < best_np; i++) {
		out->values[i] = url_decode(a, bvals[i], bvlens[i], 0);
		if (!out->values[i]) {
			/* broken percent-encoding: the path cannot name a resource */
			out->idx = -1;
			out->allow = 0;
			return;
		}
	}
}
