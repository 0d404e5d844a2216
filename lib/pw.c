/* pw.c - argon2id hashing, argon2/bcrypt verification (see pw.h for the contracts).
 *
 * libargon2 does the argon2 work, including the constant-time tag comparison of
 * argon2_verify(). We parse PHC strings ourselves first so that a malformed or absurd stored
 * hash is refused before libargon2 allocates memory for it, and so that pw_params_of() and
 * pw_needs_rehash() need no hashing at all.
 */
#include "pw.h"

#include <argon2.h>
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define PW_SALT_LEN 16 /* bytes; RFC 9106 section 3.1 recommends 128 bits */

/* Sanity caps on parameters read from a stored hash (and accepted by pw_hash): a hash is
 * refused rather than allowed to make one verification allocate 4 GiB or loop for minutes. */
#define PW_MAX_M_KIB (UINT32_C(1) << 22) /* 4 GiB */
#define PW_MAX_T UINT32_C(1024)
#define PW_MAX_P UINT32_C(255)

#define PW_BCRYPT_LEN 60 /* "$2b$" "NN" "$" 22 salt + 31 hash characters */

struct pw_phc {
	argon2_type type; /* Argon2_id or Argon2_i */
	uint32_t version; /* 0x13 (v=19) or 0x10 when the v= field is absent */
	struct pw_params params;
	size_t salt_len; /* decoded bytes */
	size_t tag_len;  /* decoded bytes */
};

/* Parses a decimal uint32 at *s, no sign, no leading zero (PHC), advancing *s. */
static int pw_parse_u32(const char **s, uint32_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	if (*p == '0' && p[1] >= '0' && p[1] <= '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
		p++;
	}
	*out = (uint32_t)v;
	*s = p;
	return 0;
}

static int pw_expect(const char **s, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*s, lit, n) != 0)
		return -1;
	*s += n;
	return 0;
}

static bool pw_is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Reads an unpadded base64 field up to '$' or the end; returns its decoded size or -1. */
static long pw_b64_field(const char **s)
{
	const char *p = *s;
	size_t n;

	while (pw_is_b64(*p))
		p++;
	n = (size_t)(p - *s);
	if (n == 0 || n % 4 == 1 || n > 1024)
		return -1;
	*s = p;
	return (long)(n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));
}

/* Parses "$argon2id$v=19$m=..,t=..,p=..$salt$tag" (or $argon2i$, or without v=). */
static int pw_phc_parse(const char *h, struct pw_phc *ph)
{
	long n;

	if (h == NULL)
		return -1;
	memset(ph, 0, sizeof *ph);
	if (pw_expect(&h, "$argon2id$") == 0)
		ph->type = Argon2_id;
	else if (pw_expect(&h, "$argon2i$") == 0)
		ph->type = Argon2_i;
	else
		return -1;
	ph->version = ARGON2_VERSION_10;
	if (pw_expect(&h, "v=") == 0) {
		if (pw_parse_u32(&h, &ph->version) != 0 || pw_expect(&h, "$") != 0)
			return -1;
		if (ph->version != ARGON2_VERSION_10 && ph->version != ARGON2_VERSION_13)
			return -1;
	}
	if (pw_expect(&h, "m=") != 0 || pw_parse_u32(&h, &ph->params.m_kib) != 0 ||
	    pw_expect(&h, ",t=") != 0 || pw_parse_u32(&h, &ph->params.t) != 0 ||
	    pw_expect(&h, ",p=") != 0 || pw_parse_u32(&h, &ph->params.p) != 0 ||
	    pw_expect(&h, "$") != 0)
		return -1;
	if ((n = pw_b64_field(&h)) < 0)
		return -1;
	ph->salt_len = (size_t)n;
	if (pw_expect(&h, "$") != 0 || (n = pw_b64_field(&h)) < 0 || *h != '\0')
		return -1;
	ph->tag_len = (size_t)n;
	/* Limits of RFC 9106 section 3.1 and our sanity caps. */
	if (ph->params.p < 1 || ph->params.p > PW_MAX_P || ph->params.t < 1 ||
	    ph->params.t > PW_MAX_T || ph->params.m_kib < 8 * ph->params.p ||
	    ph->params.m_kib > PW_MAX_M_KIB || ph->salt_len < 8 || ph->tag_len < 4)
		return -1;
	return 0;
}

static bool pw_is_bcrypt_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '/';
}

/* "$2b$NN$" + 53 characters of bcrypt's base64, NN in 04..31. */
static bool pw_is_bcrypt(const char *h)
{
	int cost;

	if (h == NULL || strlen(h) != PW_BCRYPT_LEN)
		return false;
	if (h[0] != '$' || h[1] != '2' || (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') ||
	    h[3] != '$' || h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$')
		return false;
	cost = (h[4] - '0') * 10 + (h[5] - '0');
	if (cost < 4 || cost > 31)
		return false;
	for (size_t i = 7; i < PW_BCRYPT_LEN; i++)
		if (!pw_is_bcrypt_char(h[i]))
			return false;
	return true;
}

/* Compares n bytes without an early exit, so timing does not tell where they differ. */
static bool pw_ct_equal(const char *a, const char *b, size_t n)
{
	volatile unsigned char diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

static bool pw_params_ok(const struct pw_params *pp)
{
	return pp != NULL && pp->p >= 1 && pp->p <= PW_MAX_P && pp->t >= 1 && pp->t <= PW_MAX_T &&
	       pp->m_kib >= 8 * pp->p && pp->m_kib <= PW_MAX_M_KIB;
}

int pw_hash(const struct pw_params *params, const char *pw, char *out, size_t outlen)
{
	unsigned char salt[PW_SALT_LEN];
	size_t got = 0;
	int rc = -1;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (!pw_params_ok(params) || pw == NULL || out == NULL || outlen == 0)
		goto out;
	while (got < sizeof salt) {
		ssize_t n = getrandom(salt + got, sizeof salt - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		got += (size_t)n;
	}
	if (argon2id_hash_encoded(params->t, params->m_kib, params->p, pw, strlen(pw), salt,
				  sizeof salt, PW_TAG_LEN, out, outlen) != ARGON2_OK) {
		out[0] = '\0';
		goto out;
	}
	rc = 0;
out:
	return rc;
}

static int pw_verify_bcrypt(const char *hash, const char *pw)
{
	struct crypt_data *cd = NULL;
	const char *res;
	int rc = PW_ERROR;

	/* struct crypt_data is about 32 KiB: heap, not a worker thread's stack. */
	if ((cd = calloc(1, sizeof *cd)) == NULL)
		goto out;
	res = crypt_r(pw, hash, cd);
	/* libxcrypt signals failure with NULL or a string starting with '*'. */
	if (res == NULL || res[0] == '*' || strlen(res) != PW_BCRYPT_LEN)
		goto out;
	rc = pw_ct_equal(res, hash, PW_BCRYPT_LEN) ? PW_OK : PW_MISMATCH;
out:
	if (cd != NULL) {
		explicit_bzero(cd, sizeof *cd);
		free(cd);
	}
	return rc;
}

int pw_verify(const char *hash, const char *pw)
{
	struct pw_phc ph;
	int r;

	if (hash == NULL || pw == NULL)
		return PW_ERROR;
	if (pw_is_bcrypt(hash))
		return pw_verify_bcrypt(hash, pw);
	if (pw_phc_parse(hash, &ph) != 0)
		return PW_ERROR;
	r = argon2_verify(hash, pw, strlen(pw), ph.type);
	if (r == ARGON2_OK)
		return PW_OK;
	if (r == ARGON2_VERIFY_MISMATCH)
		return PW_MISMATCH;
	return PW_ERROR;
}

int pw_params_of(const char *hash, struct pw_params *out)
{
	struct pw_phc ph;

	if (out == NULL || pw_phc_parse(hash, &ph) != 0)
		return -1;
	*out = ph.params;
	return 0;
}

bool pw_needs_rehash(const char *hash, const struct pw_params *params)
{
	struct pw_phc ph;

	if (params == NULL || pw_phc_parse(hash, &ph) != 0)
		return true; /* bcrypt, or something we cannot read */
	return ph.type != Argon2_id || ph.version != ARGON2_VERSION_13 ||
	       ph.salt_len != PW_SALT_LEN || ph.tag_len != PW_TAG_LEN ||
	       ph.params.m_kib != params->m_kib || ph.params.t != params->t ||
	       ph.params.p != params->p;
}

int pw_dummy_tag(const struct pw_params *params, unsigned char tag[PW_TAG_LEN])
{
	static const unsigned char salt[PW_SALT_LEN] = "dummy-verify-slt";
	static const char input[] = "dummy password for an unknown account";

	if (!pw_params_ok(params))
		return -1;
	return argon2id_hash_raw(params->t, params->m_kib, params->p, input, sizeof input - 1, salt,
				 sizeof salt, tag, PW_TAG_LEN) == ARGON2_OK
		       ? 0
		       : -1;
}

void pw_dummy_verify(const struct pw_params *params)
{
	unsigned char tag[PW_TAG_LEN];

	(void)pw_dummy_tag(params, tag);
	explicit_bzero(tag, sizeof tag);
}
