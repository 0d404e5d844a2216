/* aead.c - AES-256-GCM seal/open of small secrets (see aead.h for the format). */
#include "aead.h"

#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "jx.h"

#define PREFIX_LEN (sizeof(AEAD_PREFIX) - 1)

int aead_key_from_hex(const char *hex, unsigned char key[AEAD_KEY_BYTES])
{
	memset(key, 0, AEAD_KEY_BYTES);
	if (!hex)
		return -1;
	while (isspace((unsigned char)*hex))
		hex++;
	size_t n = strlen(hex);
	while (n > 0 && isspace((unsigned char)hex[n - 1]))
		n--;
	if (n != 2 * AEAD_KEY_BYTES)
		return -1;
	for (size_t i = 0; i < AEAD_KEY_BYTES; i++) {
		int hi = jx_hexval((unsigned char)hex[2 * i]),
		    lo = jx_hexval((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			OPENSSL_cleanse(key, AEAD_KEY_BYTES);
			return -1;
		}
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

char *aead_seal(const unsigned char key[AEAD_KEY_BYTES], const void *pt, size_t len,
		const void *aad, size_t aadlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	char *out = NULL;
	size_t rawlen = AEAD_NONCE_BYTES + len + AEAD_TAG_BYTES;
	int n = 0;

	if (len > AEAD_MAX_PLAIN || aadlen > INT_MAX || (len && !pt) || (aadlen && !aad))
		goto out;
	raw = malloc(rawlen);
	if (!raw)
		goto out;
	if (RAND_bytes(raw, AEAD_NONCE_BYTES) != 1)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		goto out;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, AEAD_NONCE_BYTES, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, raw) != 1)
		goto out;
	if (aadlen && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
		goto out;
	unsigned char *ct = raw + AEAD_NONCE_BYTES;
	if (len && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)len) != 1)
		goto out;
	int fin = 0;
	if (EVP_EncryptFinal_ex(ctx, ct + len, &fin) != 1 || fin != 0)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_BYTES, ct + len) != 1)
		goto out;
	/* base64: 4 chars per 3 bytes, rounded up, plus the NUL EVP_EncodeBlock writes */
	size_t b64 = 4 * ((rawlen + 2) / 3);
	out = malloc(PREFIX_LEN + b64 + 1);
	if (!out)
		goto out;
	memcpy(out, AEAD_PREFIX, PREFIX_LEN);
	EVP_EncodeBlock((unsigned char *)out + PREFIX_LEN, raw, (int)rawlen);
out:
	EVP_CIPHER_CTX_free(ctx);
	if (raw) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	return out;
}

char *aead_open(const unsigned char key[AEAD_KEY_BYTES], const char *sealed, const void *aad,
		size_t aadlen, size_t *outlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	char *pt = NULL;
	size_t rawcap = 0, ptlen = 0;
	int n = 0;
	bool ok = false;

	if (outlen)
		*outlen = 0;
	if (!sealed || strncmp(sealed, AEAD_PREFIX, PREFIX_LEN) != 0 || aadlen > INT_MAX ||
	    (aadlen && !aad))
		goto out;
	const char *b = sealed + PREFIX_LEN;
	size_t blen = strlen(b);
	if (blen == 0 || blen % 4 != 0 || blen > 4 * ((AEAD_MAX_PLAIN + 28 + 2) / 3))
		goto out;
	for (size_t i = 0; i < blen; i++) {
		unsigned char c = (unsigned char)b[i];
		bool pad = c == '=' && i >= blen - 2;
		if (!(isalnum(c) || c == '+' || c == '/' || pad))
			goto out;
		if (c != '=' && i > 0 && b[i - 1] == '=')
			goto out;
	}
	rawcap = blen / 4 * 3;
	raw = malloc(rawcap);
	if (!raw)
		goto out;
	int got = EVP_DecodeBlock(raw, (const unsigned char *)b, (int)blen);
	if (got < 0)
		goto out;
	/* EVP_DecodeBlock counts padding as zero bytes: remove them */
	size_t rawlen = (size_t)got;
	if (b[blen - 1] == '=')
		rawlen--;
	if (b[blen - 2] == '=')
		rawlen--;
	if (rawlen < AEAD_NONCE_BYTES + AEAD_TAG_BYTES)
		goto out;
	ptlen = rawlen - AEAD_NONCE_BYTES - AEAD_TAG_BYTES;
	pt = malloc(ptlen + 1);
	if (!pt)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		goto out;
	const unsigned char *ct = raw + AEAD_NONCE_BYTES;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, AEAD_NONCE_BYTES, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, raw) != 1)
		goto out;
	if (aadlen && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
		goto out;
	if (ptlen && EVP_DecryptUpdate(ctx, (unsigned char *)pt, &n, ct, (int)ptlen) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_BYTES, (void *)(ct + ptlen)) !=
	    1)
		goto out;
	int fin = 0;
	/* the tag is verified here: a mismatch fails, and the plaintext must then be discarded */
	if (EVP_DecryptFinal_ex(ctx, (unsigned char *)pt + ptlen, &fin) != 1)
		goto out;
	pt[ptlen] = '\0';
	ok = true;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (raw) {
		OPENSSL_cleanse(raw, rawcap);
		free(raw);
	}
	if (!ok) {
		aead_free(pt, ptlen);
		return NULL;
	}
	if (outlen)
		*outlen = ptlen;
	return pt;
}

void aead_free(char *p, size_t n)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, n + 1);
	free(p);
}
