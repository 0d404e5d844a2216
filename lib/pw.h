/* pw.h - password hashing: argon2id PHC strings, verification of argon2 and legacy bcrypt.
 *
 * New hashes are argon2id (RFC 9106) in the PHC string format
 *   $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt, base64 no padding>$<hash, same>
 * with a 16-byte random salt and a 32-byte tag, so the parameters travel with each hash and can
 * change without invalidating stored passwords: pw_needs_rehash() tells the caller when a
 * successful login should store a fresh hash. Legacy bcrypt hashes ($2b$, $2a$, $2y$) are
 * verified through crypt_r(3) (libxcrypt) so imported accounts can log in once and be rehashed.
 *
 * Every function is thread-safe and keeps no state between calls. Hashing is CPU- and
 * memory-bound (m_kib KiB per call): the caller bounds how many run at once.
 */
#ifndef IF_PW_H
#define IF_PW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for any PHC string pw_hash() produces (about 100 bytes with 32-bit parameters). */
#define PW_HASH_MAX 160

/* Results of pw_verify(). */
enum pw_result {
	PW_OK = 0,       /* the password matches */
	PW_MISMATCH = 1, /* well-formed hash, wrong password */
	PW_ERROR = -1,   /* malformed or unsupported hash, NULL argument, or out of memory */
};

/* argon2id cost parameters (RFC 9106 section 3.1); OWASP's minimum is m=19456, t=2, p=1. */
struct pw_params {
	uint32_t m_kib; /* memory per hash in KiB, at least 8 * p */
	uint32_t t;     /* passes over memory, at least 1 */
	uint32_t p;     /* lanes (parallelism), at least 1 */
};

/*
 * Hashes pw (NUL-terminated, any bytes) with argon2id, params and a fresh 16-byte salt from
 * getrandom(2), writing the PHC string into out (outlen bytes, PW_HASH_MAX is enough).
 * Returns 0, or -1 when params are out of range, out is too small, randomness is unavailable
 * or memory runs out; out is then an empty string (when outlen > 0).
 */
int pw_hash(const struct pw_params *params, const char *pw, char *out, size_t outlen);

/*
 * Checks pw against a stored hash: $argon2id$ / $argon2i$ PHC strings (libargon2, constant
 * time compare), or bcrypt $2b$ / $2a$ / $2y$ (crypt_r, compared in constant time). Anything
 * else, including a NULL or truncated hash, is PW_ERROR; it never crashes on stored garbage.
 * Returns enum pw_result.
 */
int pw_verify(const char *hash, const char *pw);

/*
 * Reads m/t/p of an argon2id or argon2i PHC string into out. Returns 0, or -1 when hash is not
 * a well-formed argon2 PHC string (bcrypt included).
 */
int pw_params_of(const char *hash, struct pw_params *out);

/*
 * True when a hash that just verified should be replaced by pw_hash(params): bcrypt, argon2i,
 * an argon2 version other than 0x13, a salt or tag of another size, m/t/p different from
 * params, or a hash this module cannot parse.
 */
bool pw_needs_rehash(const char *hash, const struct pw_params *params);

/*
 * Spends the time of a pw_verify() against a hash made with params, and discards the result:
 * the login path calls it for an unknown email so that response time does not reveal which
 * emails exist. Computes one argon2id hash of a fixed input with params, which is what
 * verification costs (decode + hash + compare); following params means a configuration reload
 * changes both paths together.
 */
void pw_dummy_verify(const struct pw_params *params);

#define PW_TAG_LEN 32 /* bytes of an argon2id tag made here */

/* The work of pw_dummy_verify, observable: the argon2id tag of its fixed input and salt under
 * params. 0, or -1 for unusable params. Tests check it against argon2id with the same m, t, p,
 * which proves the dummy path costs exactly one verification under params;
 * bench/auth/dummy-verify measures the two time distributions. */
int pw_dummy_tag(const struct pw_params *params, unsigned char tag[PW_TAG_LEN]);

#endif
