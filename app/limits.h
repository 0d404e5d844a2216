/* limits.h - IdeaForge's rate-limit answers and the failed-login budgets (app/limits.c;
 * API.md 4.1). The per-route limits themselves are checked by the middleware (app/mw.c),
 * pipelined with the session check.
 */
#ifndef IF_APP_LIMITS_H
#define IF_APP_LIMITS_H

#include <stdbool.h>

#include "../lib/rl.h"
#include "app.h"

/* Answers 429 with Retry-After, RateLimit-* and the body of API.md 4.1 plus "detail". Returns
 * RC_OK (the response is set). */
int limits_too_many(struct req *r, const struct rl_result *res);

/* The failed-login budget of (email, client address) and of the address alone (API.md 4.1).
 * attempt: takes one unit of each, atomically per bucket, before the password is verified, so
 * N concurrent guesses can never verify more than the limit; when refused while other attempts
 * on the bucket are still verifying, waits (bounded) for them to settle. Returns whether the
 * attempt may proceed; res tells the limit either way. settle: ok gives both units back (a
 * right password costs nothing), otherwise the units stay spent (the failure is recorded).
 * Every allowed attempt is settled exactly once. email is borrowed. */
bool limits_login_attempt(struct req *r, const char *email, struct rl_result *res);
void limits_login_settle(struct req *r, const char *email, bool ok);

/* Peeks at the address's failure budget without spending it: false (res set) when exhausted,
 * so an unauthenticated route can refuse before reading its body. */
bool limits_login_peek_address(struct req *r, struct rl_result *res);

#endif
