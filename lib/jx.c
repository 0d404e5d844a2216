/* jx.c - JSON helpers and declarative validation (FastAPI-compatible 422 items). */
#include "jx.h"

#include <string.h>

#include "arena.h"

struct json_object *jx_parse(const char *s, size_t len, int max_depth)
{
	struct json_tokener *tok = json_tokener_new_ex(max_depth > 0 ? max_depth : 32);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *o = json_tokener_parse_ex(tok, s, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	if (e == json_tokener_continue) {
		/* a lone number needs an end marker: feed the terminator */
		o = json_tokener_parse_ex(tok, "", 1);
		e = json_tokener_get_error(tok);
		used = len;
	}
	if (e != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	} else {
		/* only whitespace may follow the value */
		for (size_t i = used; i < len; i++)
			if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') {
				json_object_put(o);
				o = NULL;
				break;
			}
	}
	json_tokener_free(tok);
	return o;
}

size_t jx_nodes(const char *s, size_t len)
{
	size_t n = 1;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[' || c == ',') {
			n++;
		}
	}
	return n;
}

const char *jx_str(struct json_object *o, size_t *len)
{
	return json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

struct json_object *jx_get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

bool jx_has(struct json_object *o, const char *key)
{
	return o && json_object_is_type(o, json_type_object) &&
	       json_object_object_get_ex(o, key, NULL);
}

const char *jx_get_str(struct json_object *o, const char *key)
{
	struct json_object *v = jx_get(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int64_t jx_get_int(struct json_object *o, const char *key, int64_t def)
{
	struct json_object *v = jx_get(o, key);
	return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : def;
}

bool jx_get_bool(struct json_object *o, const char *key, bool def)
{
	struct json_object *v = jx_get(o, key);
	return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : def;
}

bool jx_is_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

static bool is_email(const char *s)
{
	size_t n = strlen(s);
	const char *at = strchr(s, '@');
	if (n < 3 || n > 254 || !at || at == s || strchr(at + 1, '@'))
		return false;
	const char *dom = at + 1;
	const char *dot = strrchr(dom, '.');
	if (!dot || dot == dom || dot[1] == '\0')
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == ',' || *p == ';')
			return false;
	return true;
}

struct json_object *jx_error_item(const char *where, const char *name, const char *type,
				  const char *msg)
{
	struct json_object *it = json_object_new_object();
	struct json_object *loc = json_object_new_array();
	json_object_array_add(loc, json_object_new_string(where));
	if (name)
		json_object_array_add(loc, json_object_new_string(name));
	json_object_object_add(it, "type", json_object_new_string(type));
	json_object_object_add(it, "loc", loc);
	json_object_object_add(it, "msg", json_object_new_string(msg));
	return it;
}

static const char *check_field(const struct jx_field *f, struct json_object *v, const char **type)
{
	enum json_type t = json_object_get_type(v);
	switch (f->type) {
	case JX_ANY: break;
	case JX_STR:
	case JX_UUID:
	case JX_EMAIL:
	case JX_ENUM:
		if (t != json_type_string) {
			*type = "string_type";
			return "Input should be a valid string";
		}
		break;
	case JX_INT:
		if (t != json_type_int) {
			*type = "int_type";
			return "Input should be a valid integer";
		}
		return NULL;
	case JX_NUM:
		if (t != json_type_int && t != json_type_double) {
			*type = "float_type";
			return "Input should be a valid number";
		}
		return NULL;
	case JX_BOOL:
		if (t != json_type_boolean) {
			*type = "bool_type";
			return "Input should be a valid boolean";
		}
		return NULL;
	case JX_OBJ:
		if (t != json_type_object) {
			*type = "dict_type";
			return "Input should be a valid dictionary";
		}
		break;
	case JX_ARR:
		if (t != json_type_array) {
			*type = "list_type";
			return "Input should be a valid list";
		}
		break;
	default: return NULL;
	}
	if (f->type == JX_ANY || f->type == JX_OBJ || f->type == JX_ARR) {
		size_t len = 0;
		if (f->max_len && (jx_str(v, &len), len > f->max_len)) {
			*type = "too_long";
			return "Value is too large";
		}
		return NULL;
	}
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len) {
		*type = "string_type";
		return "Input should not contain NUL characters";
	}
	if (f->type == JX_STR && f->max_len && len > f->max_len) {
		*type = "string_too_long";
		return "String is too long";
	}
	if (f->type == JX_UUID && !jx_is_uuid(s)) {
		*type = "uuid_parsing";
		return "Input should be a valid UUID";
	}
	if (f->type == JX_EMAIL && !is_email(s)) {
		*type = "value_error";
		return "value is not a valid email address";
	}
	if (f->type == JX_ENUM) {
		if (f->enums && jx_one_of(s, f->enums))
			return NULL;
		*type = "enum";
		return "Input should be one of the allowed values";
	}
	return NULL;
}

bool jx_validate(struct json_object *body, const struct jx_field *fields, bool strict,
		 struct json_object **errors)
{
	struct json_object *errs = json_object_new_array();
	if (!body || !json_object_is_type(body, json_type_object)) {
		json_object_array_add(errs, jx_error_item("body", NULL, "model_attributes_type",
							  "Input should be a valid dictionary"));
		*errors = errs;
		return false;
	}
	for (const struct jx_field *f = fields; f && f->name; f++) {
		struct json_object *v = NULL;
		bool present = json_object_object_get_ex(body, f->name, &v);
		if (!present) {
			if (f->flags & JX_REQUIRED)
				json_object_array_add(errs,
						      jx_error_item("body", f->name, "missing",
								    "Field required"));
			continue;
		}
		if (!v) {
			if (!(f->flags & JX_NULLABLE))
				json_object_array_add(
					errs, jx_error_item("body", f->name, "null_type",
							    (f->flags & JX_REQUIRED)
								    ? "Field required"
								    : "Input should not be null"));
			continue;
		}
		const char *type = NULL;
		const char *msg = check_field(f, v, &type);
		if (msg)
			json_object_array_add(errs, jx_error_item("body", f->name, type, msg));
	}
	if (strict) {
		json_object_object_foreach(body, key, val)
		{
			(void)val;
			bool known = false;
			for (const struct jx_field *f = fields; f && f->name; f++)
				if (strcmp(f->name, key) == 0) {
					known = true;
					break;
				}
			if (!known)
				json_object_array_add(
					errs, jx_error_item("body", key, "extra_forbidden",
							    "Extra inputs are not permitted"));
		}
	}
	if (json_object_array_length(errs) == 0) {
		json_object_put(errs);
		*errors = NULL;
		return true;
	}
	*errors = errs;
	return false;
}

bool jx_one_of(const char *s, const char *const *list)
{
	for (; s && *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static void put_cb(void *o)
{
	json_object_put(o);
}

struct json_object *jx_arena_own(struct arena *a, struct json_object *o)
{
	if (o)
		arena_defer(a, put_cb, o);
	return o;
}

size_t jx_utf8_chars(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	return n;
}

size_t jx_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

int jx_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool jx_utf8_text(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		unsigned cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}
