/* aead.h - authenticated encryption of small secrets at rest: AES-256-GCM (NIST SP 800-38D)
 * through OpenSSL's EVP interface.
 *
 * A sealed value is text, safe to store in a text column:
 *
 *     "v1:" base64( nonce (12 bytes) | ciphertext (len bytes) | tag (16 bytes) )
 *
 * Every seal draws a fresh random 96-bit nonce (RAND_bytes), so sealing the same plaintext
 * twice gives two different values. The optional associated data (aad) is authenticated but
 * not stored: bind a ciphertext to its context (e.g. "user-id/provider") so that a value copied
 * into another row no longer opens. The "v1:" prefix names this format, so a later format (or
 * a rotated master key) can be recognised without guessing.
 *
 * All functions are thread-safe and keep no state. Plaintexts returned by aead_open() are
 * wiped by aead_free(), not by free().
 */
#ifndef IF_AEAD_H
#define IF_AEAD_H

#include <stddef.h>

#define AEAD_KEY_BYTES 32         /* AES-256 key */
#define AEAD_NONCE_BYTES 12       /* GCM's recommended 96-bit IV */
#define AEAD_TAG_BYTES 16         /* full 128-bit tag */
#define AEAD_PREFIX "v1:"         /* format version of sealed values */
#define AEAD_MAX_PLAIN (1u << 20) /* largest plaintext accepted (1 MiB) */

/*
 * Parses a key written as 64 hexadecimal digits (either case), ignoring leading and trailing
 * whitespace (a key file usually ends with a newline). Returns 0 and fills key, or -1 when the
 * text is not exactly 64 hex digits (key is then zeroed).
 */
int aead_key_from_hex(const char *hex, unsigned char key[AEAD_KEY_BYTES]);

/*
 * Seals len bytes of pt under key, authenticating aad (aadlen bytes; aad may be NULL when
 * aadlen is 0). Returns a malloc'ed NUL-terminated sealed string owned by the caller (free()),
 * or NULL when len exceeds AEAD_MAX_PLAIN, randomness or the cipher fails, or out of memory.
 */
char *aead_seal(const unsigned char key[AEAD_KEY_BYTES], const void *pt, size_t len,
		const void *aad, size_t aadlen);

/*
 * Opens a value made by aead_seal() with the same key and aad. Returns the plaintext as a
 * malloc'ed buffer with a NUL appended (its length, without the NUL, in *outlen when outlen is
 * not NULL), owned by the caller, to be released with aead_free(). Returns NULL when sealed is
 * NULL, has another prefix, is not valid base64, is too short, or fails authentication (wrong
 * key, wrong aad, any modified byte): the caller cannot tell these apart, on purpose.
 */
char *aead_open(const unsigned char key[AEAD_KEY_BYTES], const char *sealed, const void *aad,
		size_t aadlen, size_t *outlen);

/* Overwrites n bytes of p (plus the NUL aead_open appended) and frees it. Accepts NULL. */
void aead_free(char *p, size_t n);

#endif
