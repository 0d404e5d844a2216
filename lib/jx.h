/* jx.h - JSON helpers over json-c: bounded parsing, typed getters, declarative validation. */
#ifndef IF_JX_H
#define IF_JX_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses len bytes with nesting limited to max_depth. NULL when malformed, too deep or not
 * exactly one JSON value; the caller owns the result (json_object_put). */
struct json_object *jx_parse(const char *s, size_t len, int max_depth);

/* Counts the values of a JSON text without building them (one pass over the bytes, no
 * allocation): every object, array and member/element separator outside strings. Close to the
 * number of nodes a parse would allocate, so a caller can refuse a body of a million empty
 * objects before json-c builds them. Malformed text gives a count too (the parse fails later). */
size_t jx_nodes(const char *s, size_t len);

/* Characters (UTF-8 code points) of the NUL-terminated s: its bytes that are not continuation
 * bytes (for limits people count in characters, e.g. a password's minimum length). */
size_t jx_utf8_chars(const char *s);

/* len when len <= max, else the largest n <= max that does not split a UTF-8 character of s
 * (s[n] is not a continuation byte): where to cut s (len bytes) to at most max bytes. */
size_t jx_utf8_cut(const char *s, size_t len, size_t max);

/* The value of the hexadecimal digit c (0-9, a-f, A-F), or -1. */
int jx_hexval(int c);

/* Serialises compactly (no slash escaping). Borrowed from o; valid until o changes. */
const char *jx_str(struct json_object *o, size_t *len);

/* Typed getters: NULL/def when absent, null or of another type. Borrowed. */
const char *jx_get_str(struct json_object *o, const char *key);
int64_t jx_get_int(struct json_object *o, const char *key, int64_t def);
bool jx_get_bool(struct json_object *o, const char *key, bool def);
struct json_object *jx_get(struct json_object *o, const char *key); /* any type, NULL if absent */
bool jx_has(struct json_object *o, const char *key);                /* present, even if null */

enum jx_type {
	JX_ANY,   /* any JSON value */
	JX_STR,   /* string, max_len in bytes (0 = no cap beyond the body cap) */
	JX_INT,   /* integer */
	JX_NUM,   /* number */
	JX_BOOL,  /* boolean */
	JX_OBJ,   /* object */
	JX_ARR,   /* array */
	JX_UUID,  /* string in canonical 8-4-4-4-12 hex form */
	JX_EMAIL, /* string, local@domain, 254 bytes at most */
	JX_ENUM,  /* string, one of enums[] */
	JX__MAX
};

#define JX_REQUIRED 0x1u /* missing -> "Field required" */
#define JX_NULLABLE 0x2u /* explicit null accepted */

struct jx_field {
	const char *name;         /* member name */
	enum jx_type type;        /* expected type */
	unsigned flags;           /* JX_REQUIRED, JX_NULLABLE */
	size_t max_len;           /* JX_STR: byte cap; JX_OBJ, JX_ARR, JX_ANY: cap on the
				   * serialised size in bytes; 0 = none */
	const char *const *enums; /* JX_ENUM: NULL-terminated allowed values */
};

/*
 * Validates body (an object) against fields (terminated by name == NULL). With strict, members
 * not in fields are errors. Returns true when valid; otherwise false and *errors is a new array
 * in FastAPI's form [{"type","loc":["body",name],"msg"}] owned by the caller.
 */
bool jx_validate(struct json_object *body, const struct jx_field *fields, bool strict,
		 struct json_object **errors);

/* One FastAPI-style error item {"type","loc":[where, name],"msg"} (new reference). */
struct json_object *jx_error_item(const char *where, const char *name, const char *type,
				  const char *msg);

/* True when s is one of the strings of list (NULL-terminated); false for s == NULL. */
bool jx_one_of(const char *s, const char *const *list);

struct arena;
/* Hands o (consumed) to arena a: json_object_put runs when the arena is reset. Returns o. */
struct json_object *jx_arena_own(struct arena *a, struct json_object *o);

/* True when the n bytes of s are strict UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF) without a NUL byte, which PostgreSQL text cannot hold. */
bool jx_utf8_text(const unsigned char *s, size_t n);

/* True when s is a canonical UUID string. */
bool jx_is_uuid(const char *s);

#endif
