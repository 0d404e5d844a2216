/* fuzz-jwt.c - session tokens (lib/auth.h): auth_verify on arbitrary input, then the same
 * token through the per-thread cache twice (miss, then hit). A token that verifies is only
 * possible with the key, which the fuzzer does not have: the property is "never crashes,
 * never leaks, never accepts".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[] = "fuzz-key-0123456789abcdef0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct auth_cache *cache;
	if (!cache)
		cache = auth_cache_new(64);
	char *tok = malloc(size + 1);
	if (!tok)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	struct auth_claims c;
	int rc = auth_verify(tok, key, sizeof(key) - 1, 1700000000, &c);
	if (rc == AUTH_OK)
		__builtin_trap(); /* a forged token was accepted */
	(void)auth_verify_cached(cache, tok, key, sizeof(key) - 1, 1700000000, &c);
	(void)auth_verify_cached(cache, tok, key, sizeof(key) - 1, 1700000000, &c);
	free(tok);
	return 0;
}
