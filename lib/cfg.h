/* cfg.h - table-driven configuration: defaults, file, <PREFIX>* environment, flags.
 *
 * Three passes (CONVENTIONS 13): parse (errors name file:line and key), validate (the caller's
 * cross-field check, naming key and value), apply (the caller swaps the snapshot in). A key is
 * declared once in a table with its type, default, bounds and help; the sample config file
 * documents the same keys.
 *
 * Precedence, lowest first: default, config file, environment <env_prefix><KEY in upper case> (the
 * application chooses the prefix), command-line flags --key=value.
 */
#ifndef IF_CFG_H
#define IF_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_type {
	CFG_STR,  /* char * (malloc-owned by the struct, freed by cfg_free) */
	CFG_INT,  /* int64_t, within [min, max] */
	CFG_BOOL, /* bool: true/false/yes/no/on/off/1/0 */
	CFG_ENUM, /* int: index into enums[] */
	CFG__MAX
};

#define CFG_SECRET 0x1u /* never printed by cfg_dump */
#define CFG_URL 0x4u    /* a URL or libpq conninfo: its password is masked when printed */
#define CFG_OCTAL 0x2u  /* CFG_INT written in octal (file modes): "0660" */

struct cfg_key {
	const char *name;         /* key as written in the file, lower_snake_case */
	enum cfg_type type;       /* storage type at base + off */
	size_t off;               /* offsetof() into the section struct */
	const char *def;          /* default as text, parsed like file input; NULL = empty */
	int64_t min, max;         /* CFG_INT bounds, inclusive */
	const char *const *enums; /* CFG_ENUM values, NULL-terminated */
	unsigned flags;           /* CFG_SECRET */
	const char *help;         /* one line, shown by --help */
};

struct cfg_section {
	const struct cfg_key *keys;  /* terminated by an entry with name == NULL */
	void *base;                  /* struct the keys write into */
	const char *env_prefix;      /* the program's: key "db_url" is env <prefix>DB_URL; NULL =
				      * keys of this section are not read from the environment */
	const char *const *defaults; /* the program's own defaults for keys of any section,
				      * "key=value" strings applied after the keys' own, NULL-
				      * terminated; NULL = none */
};

/*
 * Loads every section: defaults, then the file (when path is not NULL; a missing file is an
 * error only when required is true), then the environment, then flags ("key=value" strings,
 * without the leading dashes). Unknown keys in the file or flags are errors.
 * Returns 0, or -1 with a message in err naming the source, key and value.
 */
int cfg_load(const struct cfg_section *secs, size_t nsecs, const char *path, bool required,
	     char *const *flags, size_t nflags, char *err, size_t errlen);

/* Copies s into out (cap bytes) with passwords masked as "***": the password of a URL's
 * userinfo ("scheme://user:password@host") and the value of a libpq "password=" keyword.
 * Returns out. For printing configuration values and errors. */
char *cfg_mask(const char *s, char *out, size_t cap);

/* Frees the CFG_STR values of every section. */
void cfg_free(const struct cfg_section *secs, size_t nsecs);

/* True when name is a key of one of the sections. */
bool cfg_known(const struct cfg_section *secs, size_t nsecs, const char *name);

/* Prints "# help\nkey = value" for every key to fd (secrets as <set>/<unset>). */
void cfg_dump(const struct cfg_section *secs, size_t nsecs, int fd);

#endif
