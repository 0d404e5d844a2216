/* ctl_user.c - `ideaforgectl user add|passwd|deactivate|activate`: accounts from the command
 * line (ctl.h). Passwords are hashed with the configured argon2id parameters; a password
 * change or a deactivation revokes the user's sessions (PostgreSQL, then the Redis cache).
 */
#include <ctype.h>
#include <termios.h>
#include <unistd.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "jx.h"
#include "kv.h"
#include "pw.h"
#include "sess.h"

#define CTL_PW_MAX 1024 /* bytes of a password read from stdin */

/* Reads one line (the password) from stdin into buf. On a terminal, without
 * --password-stdin, prompts twice with echo off. 0, or -1 with a message. */
static int ctl_read_password(const struct ctl *c, char *buf, size_t buflen)
{
	bool prompt = c->opt[OPT_PASSWORD_STDIN] == NULL && isatty(STDIN_FILENO);
	char again[CTL_PW_MAX + 2];
	struct termios old, noecho;
	bool restore = false;
	int rc = -1;

	for (int round = 0; round < (prompt ? 2 : 1); round++) {
		char *dst = round == 0 ? buf : again;
		size_t dstlen = round == 0 ? buflen : sizeof again, n;

		if (prompt) {
			fputs(round == 0 ? "New password: " : "Again: ", stderr);
			fflush(stderr);
			if (tcgetattr(STDIN_FILENO, &old) == 0) {
				noecho = old;
				noecho.c_lflag &= ~(tcflag_t)ECHO;
				restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) == 0;
			}
		}
		if (fgets(dst, (int)dstlen, stdin) == NULL) {
			ctl_err("no password on standard input");
			goto out;
		}
		if (restore) {
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
			restore = false;
			fputc('\n', stderr);
		}
		n = strlen(dst);
		if (n > 0 && dst[n - 1] == '\n')
			dst[--n] = '\0';
		else if (!feof(stdin)) {
			ctl_err("password longer than %d bytes", CTL_PW_MAX);
			goto out;
		}
		if (n > 0 && dst[n - 1] == '\r')
			dst[--n] = '\0';
	}
	if (prompt && strcmp(buf, again) != 0) {
		ctl_err("the two passwords differ");
		goto out;
	}
	if ((int64_t)jx_utf8_chars(buf) < c->password_min_length || buf[0] == '\0') {
		ctl_err("password shorter than %lld characters (password_min_length)",
			(long long)c->password_min_length);
		goto out;
	}
	rc = 0;
out:
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	explicit_bzero(again, sizeof again);
	return rc;
}

/* A plausible address: one '@' with text on both sides, no spaces or controls, <= 254. */
static bool ctl_email_ok(const char *e)
{
	const char *at = strchr(e, '@');

	if (at == NULL || at == e || at[1] == '\0' || strchr(at + 1, '@') || strlen(e) > 254)
		return false;
	for (const unsigned char *p = (const unsigned char *)e; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/*
 * Ends every cached session of a user in Redis (lib/sess.h): a new revocation marker for the
 * user, so that no worker's cache vouches for any of their sessions any more; the next request
 * of each session asks PostgreSQL, which says revoked. If Redis does not answer, nothing is
 * lost: either it is down (and comes back empty: the cache runs without persistence), or it
 * is hung, and then the cache generation lease (at most redis_command_timeout_ms) has run out
 * by the time it answers anyone again, which makes every entry written before stale.
 */
static void ctl_revoke_cached(const struct ctl *c, const char *user_id)
{
	struct kv_shared sh;
	struct kv *k;

	if (c->srv->redis_url == NULL || c->srv->redis_url[0] == '\0')
		return; /* no Redis (redis_url empty): no cache to tell */
	kv_shared_init(&sh);
	k = kv_new(c->srv->redis_url, c->srv->redis_connect_timeout_ms,
		   c->srv->redis_command_timeout_ms, &sh);
	if (k == NULL || sess_revoke(k, user_id, NULL, c->session_cache_ttl_s) < 0)
		fprintf(stderr,
			"ideaforgectl: note: Redis did not answer; the revocation stands in "
			"PostgreSQL and cached sessions stop being trusted on their own\n");
	kv_free(k);
}

/*
 * Revokes every live session of a user in PostgreSQL, the durable record that every worker
 * consults when its Redis cache misses, then in the Redis session cache (ctl_revoke_cached).
 * Runs on its own (autocommit), after the change that motivated it (new password,
 * deactivation) has committed, so a concurrent cache refill cannot bring back a session that
 * we revoke. Idempotent. *nrevoked gets the count. Returns 0 or -1 (message printed).
 */
static int ctl_revoke_sessions(const struct ctl *c, struct ctx *x, const char *user_id,
			       long *nrevoked)
{
	const char *const p[] = {user_id};
	PGresult *res;

	res = db_exec(x,
		      "UPDATE user_sessions SET revoked_at = now()"
		      " WHERE user_id = $1 AND revoked_at IS NULL RETURNING id::text",
		      1, p);
	if (res == NULL) {
		ctl_db_err(x, "revoke sessions");
		return -1;
	}
	*nrevoked = PQntuples(res);
	ctl_revoke_cached(c, user_id);
	return 0;
}

int ctl_user_add(struct ctl *c)
{
	const char *email = c->opt[OPT_EMAIL], *name = c->opt[OPT_NAME];
	const char *tenant = c->opt[OPT_TENANT] ? c->opt[OPT_TENANT] : "default";
	const char *persona = c->opt[OPT_PERSONA] ? c->opt[OPT_PERSONA] : "product_manager";
	char pw[CTL_PW_MAX + 2] = "", hash[PW_HASH_MAX] = "";
	const char *p[5] = {email, name, persona, hash, tenant};
	struct ctx x = {0};
	PGresult *res;
	bool persona_ok = false, name_ok = false;
	const char *bad = NULL;
	int rc = CTL_EXIT_FAIL;

	persona_ok = jx_one_of(persona, user_personas);
	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		if (*s < ' ' || *s == 0x7f) {
			name_ok = false;
			break;
		}
		name_ok |= *s != ' ';
	}
	if (!ctl_email_ok(email))
		bad = "--email: not an email address";
	else if (!name_ok)
		bad = "--name: must not be empty or contain control characters";
	else if (!persona_ok)
		bad = "--persona: one of product_manager, leadership, tech_lead";
	if (bad) {
		ctl_err("user add: %s", bad);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (ctl_read_password(c, pw, sizeof pw) < 0)
		goto out;
	if (pw_hash(&c->pw, pw, hash, sizeof hash) < 0) {
		ctl_err("cannot hash the password (argon2 parameters or memory)");
		goto out;
	}
	if (ctl_connect(c, &x) < 0)
		goto out;
	/* One statement: the user and its default preferences, or nothing. */
	res = db_exec(&x,
		      "WITH t AS (SELECT id FROM tenants WHERE slug = $5),"
		      " u AS (INSERT INTO user_profiles"
		      "        (email, full_name, persona, password_hash, tenant_id, auth_provider)"
		      "       SELECT lower($1), $2, $3, $4, t.id, 'local' FROM t RETURNING id),"
		      " pref AS (INSERT INTO user_preferences (user_id) SELECT id FROM u)"
		      " SELECT id::text FROM u",
		      5, p);
	if (res == NULL) {
		if (strcmp(x.db_sqlstate, "23505") == 0)
			ctl_err("a user with email %s already exists", email);
		else
			ctl_db_err(&x, "user add");
		goto out;
	}
	if (PQntuples(res) != 1) {
		ctl_err("no tenant with slug '%s'", tenant);
		goto out;
	}
	printf("%s\n", PQgetvalue(res, 0, 0));
	rc = CTL_EXIT_OK;
out:
	explicit_bzero(pw, sizeof pw);
	ctl_disconnect(&x);
	return rc;
}

/* Sets one user's column by email and revokes their sessions; shared by passwd, deactivate
 * and activate. set_sql takes $1 = email and optionally $2; it must RETURN id::text, email. */
static int ctl_user_update(struct ctl *c, const char *set_sql, const char *arg2, bool revoke,
			   const char *done)
{
	const char *const p[2] = {c->opt[OPT_EMAIL], arg2};
	struct ctx x = {0};
	PGresult *res;
	long nrevoked = 0;
	int rc = CTL_EXIT_FAIL;

	if (ctl_connect(c, &x) < 0)
		goto out;
	if ((res = db_exec(&x, set_sql, arg2 ? 2 : 1, p)) == NULL) {
		ctl_db_err(&x, done);
		goto out;
	}
	if (PQntuples(res) != 1) {
		ctl_err("no user with email %s", c->opt[OPT_EMAIL]);
		goto out;
	}
	if (revoke && ctl_revoke_sessions(c, &x, PQgetvalue(res, 0, 0), &nrevoked) < 0)
		goto out;
	if (revoke)
		printf("%s %s; %ld session(s) revoked\n", done, PQgetvalue(res, 0, 1), nrevoked);
	else
		printf("%s %s\n", done, PQgetvalue(res, 0, 1));
	rc = CTL_EXIT_OK;
out:
	ctl_disconnect(&x);
	return rc;
}

int ctl_user_passwd(struct ctl *c)
{
	char pw[CTL_PW_MAX + 2] = "", hash[PW_HASH_MAX] = "";
	int rc = CTL_EXIT_FAIL;

	if (ctl_read_password(c, pw, sizeof pw) < 0)
		goto out;
	if (pw_hash(&c->pw, pw, hash, sizeof hash) < 0) {
		ctl_err("cannot hash the password (argon2 parameters or memory)");
		goto out;
	}
	rc = ctl_user_update(c,
			     "UPDATE user_profiles SET password_hash = $2"
			     " WHERE email = lower($1) RETURNING id::text, email",
			     hash, true, "password changed for");
out:
	explicit_bzero(pw, sizeof pw);
	return rc;
}

int ctl_user_deactivate(struct ctl *c)
{
	return ctl_user_update(c,
			       "UPDATE user_profiles SET is_active = false"
			       " WHERE email = lower($1) RETURNING id::text, email",
			       NULL, true, "deactivated");
}

int ctl_user_activate(struct ctl *c)
{
	return ctl_user_update(c,
			       "UPDATE user_profiles SET is_active = true"
			       " WHERE email = lower($1) RETURNING id::text, email",
			       NULL, false, "activated");
}
