/* cfg.c - table-driven configuration loader (see cfg.h for precedence). */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const struct cfg_key *find_key(const struct cfg_section *secs, size_t nsecs,
				      const char *name, size_t namelen, void **base)
{
	for (size_t s = 0; s < nsecs; s++)
		for (const struct cfg_key *k = secs[s].keys; k->name; k++)
			if (strlen(k->name) == namelen && strncmp(k->name, name, namelen) == 0) {
				*base = secs[s].base;
				return k;
			}
	return NULL;
}

bool cfg_known(const struct cfg_section *secs, size_t nsecs, const char *name)
{
	void *base;
	return find_key(secs, nsecs, name, strlen(name), &base) != NULL;
}

/* Parses value for key k into base; -1 with a description of the expected form in why. */
static int set_value(const struct cfg_key *k, void *base, const char *value, char *why,
		     size_t whylen)
{
	char *field = (char *)base + k->off;
	switch (k->type) {
	case CFG_STR: {
		char **sp = (char **)field;
		char *copy = strdup(value);
		if (!copy) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		free(*sp);
		*sp = copy;
		return 0;
	}
	case CFG_INT: {
		char *end;
		errno = 0;
		/* decimal, so that "010" is ten; file modes are octal by declaration */
		long long v = strtoll(value, &end, (k->flags & CFG_OCTAL) ? 8 : 10);
		if (errno || end == value || *end != '\0' || v < k->min || v > k->max) {
			snprintf(why, whylen, "expected an integer from %lld to %lld",
				 (long long)k->min, (long long)k->max);
			return -1;
		}
		*(int64_t *)field = v;
		return 0;
	}
	case CFG_BOOL: {
		static const char *const t[] = {"true", "yes", "on", "1"};
		static const char *const f[] = {"false", "no", "off", "0"};
		for (size_t i = 0; i < 4; i++) {
			if (strcasecmp(value, t[i]) == 0) {
				*(bool *)field = true;
				return 0;
			}
			if (strcasecmp(value, f[i]) == 0) {
				*(bool *)field = false;
				return 0;
			}
		}
		snprintf(why, whylen, "expected true or false");
		return -1;
	}
	case CFG_ENUM: {
		size_t off = 0;
		for (int i = 0; k->enums[i]; i++)
			if (strcmp(value, k->enums[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		off += (size_t)snprintf(why, whylen, "expected one of");
		for (int i = 0; k->enums[i] && off < whylen; i++)
			off += (size_t)snprintf(why + off, whylen - off, " %s", k->enums[i]);
		return -1;
	}
	default: snprintf(why, whylen, "bad key type"); return -1;
	}
}

static int apply(const struct cfg_section *secs, size_t nsecs, const char *where, const char *name,
		 size_t namelen, const char *value, char *err, size_t errlen)
{
	void *base;
	const struct cfg_key *k = find_key(secs, nsecs, name, namelen, &base);
	if (!k) {
		snprintf(err, errlen, "%s: unknown key '%.*s'", where, (int)namelen, name);
		return -1;
	}
	char why[200];
	if (set_value(k, base, value, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: invalid value '%s' for key '%s' (%s)", where,
			 (k->flags & CFG_SECRET) ? "<secret>" : value, k->name, why);
		return -1;
	}
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int load_file(const struct cfg_section *secs, size_t nsecs, const char *path, bool required,
		     char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (!required && errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	char line[4096];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char where[600];
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s: line too long", where);
			rc = -1;
			break;
		}
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s: expected 'key = value'", where);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *key = trim(s);
		char *val = trim(eq + 1);
		size_t vl = strlen(val);
		if (vl >= 2 && ((val[0] == '"' && val[vl - 1] == '"') ||
				(val[0] == '\'' && val[vl - 1] == '\''))) {
			val[vl - 1] = '\0';
			val++;
		}
		if (apply(secs, nsecs, where, key, strlen(key), val, err, errlen) < 0) {
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

int cfg_load(const struct cfg_section *secs, size_t nsecs, const char *path, bool required,
	     char *const *flags, size_t nflags, char *err, size_t errlen)
{
	/* defaults */
	for (size_t s = 0; s < nsecs; s++)
		for (const struct cfg_key *k = secs[s].keys; k->name; k++)
			if (apply(secs, nsecs, "default", k->name, strlen(k->name),
				  k->def ? k->def : "", err, errlen) < 0)
				return -1;
	for (size_t s = 0; s < nsecs; s++)
		for (const char *const *d = secs[s].defaults; d && *d; d++) {
			const char *eq = strchr(*d, '=');
			if (eq && apply(secs, nsecs, "default", *d, (size_t)(eq - *d), eq + 1, err,
					errlen) < 0)
				return -1;
		}
	if (path && load_file(secs, nsecs, path, required, err, errlen) < 0)
		return -1;
	/* environment */
	for (size_t s = 0; s < nsecs; s++)
		for (const struct cfg_key *k = secs[s].keys; secs[s].env_prefix && k->name; k++) {
			char env[128];
			size_t n = (size_t)snprintf(env, sizeof(env), "%s", secs[s].env_prefix);
			if (n >= sizeof(env))
				n = sizeof(env) - 1;
			for (const char *p = k->name; *p && n < sizeof(env) - 1; p++)
				env[n++] = (char)toupper((unsigned char)*p);
			env[n] = '\0';
			const char *v = getenv(env);
			if (v) {
				char where[160];
				snprintf(where, sizeof(where), "environment %s", env);
				if (apply(secs, nsecs, where, k->name, strlen(k->name), v, err,
					  errlen) < 0)
					return -1;
			}
		}
	/* flags */
	for (size_t i = 0; i < nflags; i++) {
		const char *eq = strchr(flags[i], '=');
		if (!eq) {
			snprintf(err, errlen, "flag --%s: expected --key=value", flags[i]);
			return -1;
		}
		if (apply(secs, nsecs, "command line", flags[i], (size_t)(eq - flags[i]), eq + 1,
			  err, errlen) < 0)
			return -1;
	}
	return 0;
}

void cfg_free(const struct cfg_section *secs, size_t nsecs)
{
	for (size_t s = 0; s < nsecs; s++)
		for (const struct cfg_key *k = secs[s].keys; k->name; k++)
			if (k->type == CFG_STR) {
				char **sp = (char **)((char *)secs[s].base + k->off);
				free(*sp);
				*sp = NULL;
			}
}

char *cfg_mask(const char *s, char *out, size_t cap)
{
	const char *p = s ? s : "";
	const char *sep = strstr(p, "://");
	const char *auth = sep ? sep + 3 : NULL;
	const char *at = auth ? strchr(auth, '@') : NULL;
	const char *slash = auth ? strchr(auth, '/') : NULL;
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (at && colon && (!slash || at < slash)) {
		/* scheme://user:***@rest */
		snprintf(out, cap, "%.*s:***%s", (int)(colon - p), p, at);
		return out;
	}
	/* libpq keyword form: password=value or password='quoted value' */
	const char *pw = strstr(p, "password=");
	if (pw && (pw == p || pw[-1] == ' ')) {
		const char *v = pw + 9, *end = v;
		if (*v == '\'') {
			for (end = v + 1; *end && *end != '\''; end++)
				if (*end == '\\' && end[1])
					end++;
			if (*end)
				end++;
		} else {
			end = v + strcspn(v, " ");
		}
		snprintf(out, cap, "%.*s***%s", (int)(v - p), p, end);
		return out;
	}
	snprintf(out, cap, "%s", p);
	return out;
}

void cfg_dump(const struct cfg_section *secs, size_t nsecs, int fd)
{
	FILE *f = fdopen(dup(fd), "w");
	if (!f)
		return;
	for (size_t s = 0; s < nsecs; s++)
		for (const struct cfg_key *k = secs[s].keys; k->name; k++) {
			const char *field = (const char *)secs[s].base + k->off;
			fprintf(f, "# %s\n%s = ", k->help ? k->help : "", k->name);
			switch (k->type) {
			case CFG_STR: {
				const char *v = *(char *const *)field;
				char masked[1024];
				if (k->flags & CFG_SECRET)
					fputs(v && *v ? "<set>" : "<unset>", f);
				else if (k->flags & CFG_URL)
					fputs(cfg_mask(v, masked, sizeof(masked)), f);
				else
					fputs(v ? v : "", f);
				break;
			}
			case CFG_INT:
				fprintf(f, (k->flags & CFG_OCTAL) ? "0%llo" : "%lld",
					(long long)*(const int64_t *)field);
				break;
			case CFG_BOOL: fputs(*(const bool *)field ? "true" : "false", f); break;
			case CFG_ENUM: fputs(k->enums[*(const int *)field], f); break;
			default: break;
			}
			fputs("\n", f);
		}
	fclose(f);
}
