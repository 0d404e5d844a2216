/* idem.c - Idempotency-Key on the create routes (ROUTE_IDEMPOTENT in app/routes.c).
 *
 * Why: a create answered 503 after it committed (PostgreSQL crashed after COMMIT, a worker died
 * before writing the response) is retried by clients, which made a duplicate row. With the
 * header (draft-ietf-httpapi-idempotency-key-header), the retry answers the first result.
 *
 * How: one transaction holds the key's row (sql/0003_idempotency.sql), the handler's writes and
 * the recorded response, so they commit together or not at all:
 *   1. INSERT the key ... ON CONFLICT DO UPDATE only when the old one expired (24 h). The
 *      unique index makes a concurrent request with the same key wait here until the first
 *      commits or rolls back.
 *   2. Inserted: run the handler; a 2xx response is stored on the row and everything commits;
 *      anything else rolls back (the key is free again, a retry runs afresh).
 *   3. Not inserted (a live key): same fingerprint -> the stored status and body; another
 *      fingerprint -> 422. Nothing is written.
 * Keys are scoped per user and per "METHOD pattern", so two users, or two routes, never share
 * one. The fingerprint is SHA-256 over the path and the body bytes (a multipart retry must resend
 * the same bytes, boundary included).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

#define IDEM_KEY_MAX 255 /* bytes of an Idempotency-Key */

/* 1..IDEM_KEY_MAX printable ASCII characters (0x20..0x7e). */
static bool idem_key_ok(const char *k)
{
	size_t n = 0;
	for (; k[n]; n++)
		if ((unsigned char)k[n] < 0x20 || (unsigned char)k[n] > 0x7e || n >= IDEM_KEY_MAX)
			return false;
	return n > 0;
}

/* Hex SHA-256 of path NUL body into hex[65]. 0, or -1 when libcrypto fails. */
static int idem_fingerprint(struct req *r, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, r->path, strlen(r->path) + 1) != 1 ||
	    (r->body_len && EVP_DigestUpdate(ctx, r->body, r->body_len) != 1) ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int idem_run(struct req *r, route_fn fn)
{
	const char *key = req_env(r, "HTTP_IDEMPOTENCY_KEY");
	if (!key || !r->route || !(r->route->flags & ROUTE_IDEMPOTENT) || !r->authed)
		return fn(r);
	if (!idem_key_ok(key))
		return req_fail(r, RC_BADREQ,
				"Idempotency-Key must be 1 to %d printable ASCII characters",
				IDEM_KEY_MAX);
	char fp[65];
	if (idem_fingerprint(r, fp) < 0)
		return req_fail(r, RC_INTERNAL, "idempotency: sha256 failed");
	char route[160];
	snprintf(route, sizeof(route), "%s %s", http_method_names[r->route->method],
		 r->route->pattern);
	const char *p[] = {r->auth.user_id, route, key, fp};
	int rc = db_begin(&r->c);
	if (rc != RC_OK)
		return rc;
	bool mine;
	db_value(&r->c, &mine,
		 "WITH purge AS (DELETE FROM idempotency_keys WHERE user_id = $1 "
		 "AND created_at < now() - interval '24 hours' AND NOT (route = $2 AND key = $3)) "
		 "INSERT INTO idempotency_keys AS k (user_id, route, key, fingerprint) "
		 "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, route, key) DO UPDATE "
		 "SET fingerprint = EXCLUDED.fingerprint, status = NULL, body = NULL, "
		 "created_at = now() WHERE k.created_at < now() - interval '24 hours' RETURNING 1",
		 4, p);
	if (r->rc != RC_OK) {
		rc = r->rc;
		goto fail;
	}
	if (!mine) {
		/* a live key: its first request has committed (we waited for it) */
		PGresult *res =
			db_exec(&r->c,
				"SELECT fingerprint = $4, status, body FROM idempotency_keys "
				"WHERE user_id = $1 AND route = $2 AND key = $3",
				4, p);
		if (!res) {
			rc = r->rc;
			goto fail;
		}
		db_rollback(&r->c);
		if (PQntuples(res) == 0 || PQgetisnull(res, 0, 1))
			return req_fail(r, RC_CONFLICT,
					"A request with this Idempotency-Key is still in progress");
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			return req_fail(
				r, RC_INVALID,
				"Idempotency-Key was already used with a different request");
		res_header(r, "Idempotent-Replayed", "true");
		const char *body = PQgetvalue(res, 0, 2);
		return res_json_text(r, atoi(PQgetvalue(res, 0, 1)), body, strlen(body));
	}
	rc = fn(r);
	if (rc != RC_OK || r->status < 200 || r->status > 299)
		goto fail;
	char status[8];
	snprintf(status, sizeof(status), "%d", r->status);
	const char *q[] = {r->auth.user_id, route, key, status, r->out.p ? r->out.p : ""};
	if (!db_exec(&r->c,
		     "UPDATE idempotency_keys SET status = $4::int, body = $5 "
		     "WHERE user_id = $1 AND route = $2 AND key = $3",
		     5, q) ||
	    db_commit(&r->c) != RC_OK) {
		rc = r->rc; /* the write is rolled back too: the retry runs afresh */
		goto fail;
	}
	return RC_OK;
fail:
	db_rollback(&r->c);
	return rc;
}
