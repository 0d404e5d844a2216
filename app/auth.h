/* auth.h - the handlers of authentication and users (API.md 1.2, 1.3, 3) and their body
 * rules, for app/routes.c. What they share with the middleware lives in app/session.h
 * (sessions, tokens, cookies), app/limits.h (login budgets, 429), app/pwpool.h (hashing).
 */
#ifndef IF_APP_AUTH_H
#define IF_APP_AUTH_H

#include "app.h"

/* --- handlers (app/h_auth.c) ------------------------------------------------------------- */

int h_auth_login(struct req *r);      /* POST /api/auth/login */
int h_auth_logout(struct req *r);     /* POST /api/auth/logout */
int h_auth_logout_all(struct req *r); /* POST /api/auth/logout-all */
int h_auth_refresh(struct req *r);    /* POST /api/auth/refresh */
int h_auth_password(struct req *r);   /* PUT /api/auth/password */
int h_auth_register(struct req *r);   /* POST /api/auth/register */
/* GET /api/auth/register: 404 while registration is off (the path does not exist then), else
 * 405 with Allow: POST, as any other path without that method. */
int h_auth_register_get(struct req *r);
int h_auth_me(struct req *r);    /* GET /api/auth/me */
int h_auth_users(struct req *r); /* GET /api/auth/users */

extern const struct jx_field auth_login_fields[];
extern const struct jx_field auth_password_fields[];
extern const struct jx_field auth_register_fields[];

/* --- handlers (app/h_users.c) ------------------------------------------------------------ */

int h_users_profile_get(struct req *r);     /* GET /api/users/profile */
int h_users_profile_put(struct req *r);     /* PUT /api/users/profile */
int h_users_preferences_get(struct req *r); /* GET /api/users/preferences */
int h_users_preferences_put(struct req *r); /* PUT /api/users/preferences */

extern const struct jx_field users_profile_fields[];
extern const struct jx_field users_preferences_fields[];

#endif
