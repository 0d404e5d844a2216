/* ctx.c - the transport-neutral context of one unit of work. */
#include "ctx.h"

#include <stdio.h>
#include <string.h>

void ctx_init(struct ctx *c, struct arena *a, struct db_pool *pool, const char *id)
{
	memset(c, 0, sizeof(*c));
	c->a = a;
	c->pool = pool;
	snprintf(c->rid, sizeof(c->rid), "%s", id ? id : "-");
}

int ctx_vfail(struct ctx *c, enum rc rc, const char *fmt, va_list ap)
{
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	c->rc = rc;
	return rc;
}

int ctx_fail(struct ctx *c, enum rc rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ctx_vfail(c, rc, fmt, ap);
	va_end(ap);
	return rc;
}

void ctx_clear(struct ctx *c)
{
	c->rc = RC_OK;
	c->detail[0] = '\0';
	c->db_sqlstate[0] = '\0';
	c->db_err = NULL;
}
