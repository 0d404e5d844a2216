/* test-cfg.c - unit tests of lib/cfg.c: defaults, the file format (comments, quotes, blank
 * lines), precedence default < file < IDEAFORGE_* environment < flags, and the error messages
 * that name the source (file:line, environment variable, command line), the key and the value.
 * Also the server's own key table (lib/srv.c) and its cross-field validation. */
#include <check.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "srv.h"

struct tconf {
	char *name;    /* CFG_STR */
	char *token;   /* CFG_STR, secret */
	int64_t count; /* CFG_INT 1..100 */
	int64_t mode;  /* CFG_INT, CFG_OCTAL */
	bool flag;     /* CFG_BOOL */
	int color;     /* CFG_ENUM */
};

static const char *const colors[] = {"red", "green", "blue", NULL};

static const struct cfg_key tkeys[] = {
	{"name", CFG_STR, offsetof(struct tconf, name), "anon", 0, 0, NULL, 0, "a name"},
	{"token", CFG_STR, offsetof(struct tconf, token), NULL, 0, 0, NULL, CFG_SECRET, "secret"},
	{"count", CFG_INT, offsetof(struct tconf, count), "10", 1, 100, NULL, 0, "a count"},
	{"mode", CFG_INT, offsetof(struct tconf, mode), "0640", 0, 0777, NULL, CFG_OCTAL, "a mode"},
	{"flag", CFG_BOOL, offsetof(struct tconf, flag), "false", 0, 0, NULL, 0, "a flag"},
	{"color", CFG_ENUM, offsetof(struct tconf, color), "green", 0, 0, colors, 0, "a color"},
	{0},
};

static struct tconf tc;
static struct cfg_section tsec = {tkeys, &tc, "IDEAFORGE_", NULL};
static char path[64];
static char err[512];

static void setup(void)
{
	memset(&tc, 0, sizeof(tc));
	err[0] = '\0';
	snprintf(path, sizeof(path), "/tmp/test-cfg-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	static const char *const vars[] = {"IDEAFORGE_NAME", "IDEAFORGE_TOKEN", "IDEAFORGE_COUNT",
					   "IDEAFORGE_MODE", "IDEAFORGE_FLAG",  "IDEAFORGE_COLOR"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static void teardown(void)
{
	cfg_free(&tsec, 1);
	unlink(path);
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_defaults)
{
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, NULL, 0, err, sizeof(err)), 0);
	ck_assert_str_eq(tc.name, "anon");
	ck_assert_str_eq(tc.token, "");
	ck_assert_int_eq(tc.count, 10);
	ck_assert_int_eq(tc.mode, 0640);
	ck_assert(!tc.flag);
	ck_assert_int_eq(tc.color, 1);
}
END_TEST

START_TEST(test_missing_file)
{
	unlink(path);
	/* optional: defaults */
	ck_assert_int_eq(cfg_load(&tsec, 1, path, false, NULL, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(tc.count, 10);
	/* required: an error naming the file */
	ck_assert_int_eq(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, path) != NULL, "error does not name the file: %s", err);
}
END_TEST

START_TEST(test_file_parse)
{
	write_file("# a comment\n"
		   "\n"
		   "   ; another comment style\n"
		   "name = \"quoted value with # and = inside\"\n"
		   "  count=42   \n"
		   "\tflag = YES\n"
		   "color = 'blue'\n"
		   "mode = 0755\n"
		   "token = s3cret\n");
	ck_assert_msg(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(tc.name, "quoted value with # and = inside");
	ck_assert_int_eq(tc.count, 42);
	ck_assert(tc.flag);
	ck_assert_int_eq(tc.color, 2);
	ck_assert_int_eq(tc.mode, 0755);
	ck_assert_str_eq(tc.token, "s3cret");
}
END_TEST

START_TEST(test_file_empty_value_and_last_wins)
{
	write_file("name =\ncount = 5\ncount = 6\n");
	ck_assert_msg(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(tc.name, "");
	ck_assert_int_eq(tc.count, 6);
}
END_TEST

START_TEST(test_bool_forms)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "On"};
	static const char *const no[] = {"false", "no", "off", "0", "False", "OFF"};
	char flag[32];
	for (size_t i = 0; i < 6; i++) {
		snprintf(flag, sizeof(flag), "flag=%s", yes[i]);
		char *flags[] = {flag};
		ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), 0);
		ck_assert_msg(tc.flag, "%s should be true", yes[i]);
		snprintf(flag, sizeof(flag), "flag=%s", no[i]);
		ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), 0);
		ck_assert_msg(!tc.flag, "%s should be false", no[i]);
	}
}
END_TEST

START_TEST(test_precedence)
{
	write_file("name = from-file\ncount = 20\ncolor = red\nflag = on\n");
	setenv("IDEAFORGE_COUNT", "30", 1);
	setenv("IDEAFORGE_COLOR", "blue", 1);
	char f1[] = "color=green";
	char *flags[] = {f1};
	ck_assert_msg(cfg_load(&tsec, 1, path, true, flags, 1, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(tc.name, "from-file"); /* file over default */
	ck_assert_int_eq(tc.count, 30);         /* environment over file */
	ck_assert_int_eq(tc.color, 1);          /* flag over environment */
	ck_assert(tc.flag);                     /* file value kept */
	ck_assert_int_eq(tc.mode, 0640);        /* default kept */
	unsetenv("IDEAFORGE_COUNT");
	unsetenv("IDEAFORGE_COLOR");
}
END_TEST

START_TEST(test_reload_resets_to_defaults)
{
	/* a second load (SIGHUP) starts again from the defaults: a key removed from the file
	 * returns to its default rather than keeping the old value */
	write_file("count = 99\n");
	ck_assert_int_eq(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(tc.count, 99);
	write_file("# nothing\n");
	ck_assert_int_eq(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(tc.count, 10);
}
END_TEST

START_TEST(test_unknown_key_names_file_and_line)
{
	write_file("# header\ncount = 3\nbogus_key = 1\n");
	ck_assert_int_eq(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)), -1);
	char want[128];
	snprintf(want, sizeof(want), "%s:3", path);
	ck_assert_msg(strstr(err, want) != NULL, "no %s in: %s", want, err);
	ck_assert_msg(strstr(err, "bogus_key") != NULL, "key not named: %s", err);
}
END_TEST

START_TEST(test_unknown_flag)
{
	char f1[] = "colour=red";
	char *flags[] = {f1};
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "colour") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "command line") != NULL, "%s", err);
	char f2[] = "count";
	char *flags2[] = {f2};
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags2, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "count") != NULL, "%s", err);
}
END_TEST

START_TEST(test_line_without_equals)
{
	write_file("count = 3\njust some words\n");
	ck_assert_int_eq(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)), -1);
	char want[128];
	snprintf(want, sizeof(want), "%s:2", path);
	ck_assert_msg(strstr(err, want) != NULL, "no %s in: %s", want, err);
}
END_TEST

START_TEST(test_bad_int_names_key_and_value)
{
	write_file("count = twelve\n");
	ck_assert_int_eq(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "'count'") != NULL, "key not named: %s", err);
	ck_assert_msg(strstr(err, "'twelve'") != NULL, "value not named: %s", err);
	ck_assert_msg(strstr(err, ":1") != NULL, "line not named: %s", err);
	/* trailing garbage */
	write_file("count = 12abc\n");
	ck_assert_int_eq(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "'12abc'") != NULL, "%s", err);
}
END_TEST

START_TEST(test_int_bounds)
{
	char f[32];
	char *flags[] = {f};
	snprintf(f, sizeof(f), "count=100");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), 0);
	ck_assert_int_eq(tc.count, 100);
	snprintf(f, sizeof(f), "count=1");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), 0);
	ck_assert_int_eq(tc.count, 1);
	snprintf(f, sizeof(f), "count=101");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "'101'") && strstr(err, "'count'") && strstr(err, "1 to 100"),
		      "%s", err);
	snprintf(f, sizeof(f), "count=0");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	snprintf(f, sizeof(f), "count=-5");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	snprintf(f, sizeof(f), "count=99999999999999999999999");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	snprintf(f, sizeof(f), "count=");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_bad_bool_and_enum)
{
	char f[32];
	char *flags[] = {f};
	snprintf(f, sizeof(f), "flag=maybe");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "'flag'") && strstr(err, "'maybe'"), "%s", err);
	snprintf(f, sizeof(f), "color=purple");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "'color'") && strstr(err, "'purple'"), "%s", err);
	/* the message lists the allowed values */
	ck_assert_msg(strstr(err, "red") && strstr(err, "green") && strstr(err, "blue"), "%s", err);
	/* enums are case-sensitive, exactly as documented */
	snprintf(f, sizeof(f), "color=RED");
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_bad_env_names_variable)
{
	setenv("IDEAFORGE_COUNT", "lots", 1);
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, NULL, 0, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "IDEAFORGE_COUNT") && strstr(err, "'lots'"), "%s", err);
	unsetenv("IDEAFORGE_COUNT");
}
END_TEST

START_TEST(test_secret_value_not_echoed)
{
	/* an int-typed secret would be odd; use a bad value on the secret string key via a
	 * custom table where the secret is an int */
	static const struct cfg_key skeys[] = {
		{"pin", CFG_INT, offsetof(struct tconf, count), "1", 0, 9999, NULL, CFG_SECRET, ""},
		{0},
	};
	struct cfg_section ssec = {skeys, &tc, "IDEAFORGE_", NULL};
	char f[] = "pin=hunter2";
	char *flags[] = {f};
	ck_assert_int_eq(cfg_load(&ssec, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "'pin'") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "hunter2") == NULL, "secret echoed: %s", err);
}
END_TEST

START_TEST(test_dump_hides_secrets)
{
	write_file("token = very-secret\nname = shown\n");
	ck_assert_int_eq(cfg_load(&tsec, 1, path, true, NULL, 0, err, sizeof(err)), 0);
	char out[] = "/tmp/test-cfg-dump-XXXXXX";
	int fd = mkstemp(out);
	ck_assert_int_ge(fd, 0);
	cfg_dump(&tsec, 1, fd);
	char text[4096] = "";
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, text, sizeof(text) - 1);
	ck_assert_int_gt(n, 0);
	text[n] = '\0';
	close(fd);
	unlink(out);
	ck_assert_msg(strstr(text, "very-secret") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "token = <set>") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "name = shown") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "color = green") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "mode = 0640") != NULL, "%s", text); /* octal key, octal out */
}
END_TEST

/* regression: integers were parsed with base 0, so "010" meant 8 and "08" was refused */
START_TEST(test_int_is_decimal_unless_octal_key)
{
	char *flags[] = {"count=010"};
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags, 1, err, sizeof(err)), 0);
	ck_assert_int_eq(tc.count, 10);
	char *flags2[] = {"count=08", "mode=0750"};
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags2, 2, err, sizeof(err)), 0);
	ck_assert_int_eq(tc.count, 8);
	ck_assert_int_eq(tc.mode, 0750);
	char *flags3[] = {"mode=0800"};
	ck_assert_int_eq(cfg_load(&tsec, 1, NULL, false, flags3, 1, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_known)
{
	ck_assert(cfg_known(&tsec, 1, "count"));
	ck_assert(!cfg_known(&tsec, 1, "coun"));
	ck_assert(!cfg_known(&tsec, 1, "counter"));
}
END_TEST

/* The server's own table: defaults of the brief, env override, validation messages. */
START_TEST(test_srv_defaults_and_validate)
{
	struct srv_config c;
	memset(&c, 0, sizeof(c));
	struct cfg_section s = {srv_config_keys, &c, "IDEAFORGE_", NULL};
	unsetenv("IDEAFORGE_WORKERS");
	unsetenv("IDEAFORGE_MAX_BODY_BYTES");
	ck_assert_msg(cfg_load(&s, 1, NULL, false, NULL, 0, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c.max_body_bytes, 10485760);
	ck_assert_int_eq(c.socket_mode, 0660);
	ck_assert_int_eq(c.pm, PM_STATIC);
	ck_assert(c.db_pool_pre_ping);
	ck_assert_msg(srv_config_validate(&c, err, sizeof(err)) == 0, "%s", err);

	setenv("IDEAFORGE_WORKERS", "3", 1);
	ck_assert_int_eq(cfg_load(&s, 1, NULL, false, NULL, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(c.workers, 3);
	unsetenv("IDEAFORGE_WORKERS");

	char f[] = "workers=0";
	char *flags[] = {f};
	ck_assert_int_eq(cfg_load(&s, 1, NULL, false, flags, 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "'workers'") && strstr(err, "'0'"), "%s", err);

	/* cross-field: more workers than the scoreboard holds */
	char f1[] = "workers=9", f2[] = "workers_max=8";
	char *flags2[] = {f1, f2};
	ck_assert_int_eq(cfg_load(&s, 1, NULL, false, flags2, 2, err, sizeof(err)), 0);
	ck_assert_int_eq(srv_config_validate(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "workers") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "9") != NULL, "%s", err);

	char f3[] = "redis_url=http://127.0.0.1:6379";
	char *flags3[] = {f3};
	ck_assert_int_eq(cfg_load(&s, 1, NULL, false, flags3, 1, err, sizeof(err)), 0);
	ck_assert_int_eq(srv_config_validate(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "'redis_url'") && strstr(err, "'http://127.0.0.1:6379'"), "%s",
		      err);
	cfg_free(&s, 1);
}
END_TEST

/* The program names its environment prefix and its own defaults for the kit's keys: the kit
 * itself carries no program's name. */
START_TEST(test_program_prefix_and_defaults)
{
	struct srv_config c;
	memset(&c, 0, sizeof(c));
	static const char *const defs[] = {"database_url=dbname=example", "workers=3", NULL};
	struct cfg_section s = {srv_config_keys, &c, "EXAMPLE_", defs};
	setenv("IDEAFORGE_WORKERS", "5", 1);
	setenv("EXAMPLE_THREADS", "4", 1);
	ck_assert_msg(cfg_load(&s, 1, NULL, false, NULL, 0, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.database_url, "dbname=example");
	ck_assert_int_eq(c.workers, 3); /* the program's default; IDEAFORGE_ is not its prefix */
	ck_assert_int_eq(c.threads, 4);
	unsetenv("IDEAFORGE_WORKERS");
	unsetenv("EXAMPLE_THREADS");
	/* without defaults the kit has no database: valid, queries then answer 503 */
	struct cfg_section bare = {srv_config_keys, &c, NULL, NULL};
	ck_assert_int_eq(cfg_load(&bare, 1, NULL, false, NULL, 0, err, sizeof(err)), 0);
	ck_assert_str_eq(c.database_url, "");
	ck_assert_msg(srv_config_validate(&c, err, sizeof(err)) == 0, "%s", err);
	cfg_free(&s, 1);
}
END_TEST

/* Passwords in URLs and libpq conninfo are masked whenever a value is printed. */
START_TEST(test_mask_passwords)
{
	char out[256];
	ck_assert_str_eq(cfg_mask("redis://:s3cret@h:6379/0", out, sizeof(out)),
			 "redis://:***@h:6379/0");
	ck_assert_str_eq(cfg_mask("redis://app:s3cret@h/0", out, sizeof(out)),
			 "redis://app:***@h/0");
	ck_assert_str_eq(
		cfg_mask("postgresql://u:pw@db:5432/x?sslmode=verify-full", out, sizeof(out)),
		"postgresql://u:***@db:5432/x?sslmode=verify-full");
	ck_assert_str_eq(cfg_mask("host=db password=hunter2 dbname=x", out, sizeof(out)),
			 "host=db password=*** dbname=x");
	ck_assert_str_eq(cfg_mask("password='a b\\' c' host=db", out, sizeof(out)),
			 "password=*** host=db");
	ck_assert_str_eq(cfg_mask("redis://h:6379/0", out, sizeof(out)), "redis://h:6379/0");
	ck_assert_str_eq(cfg_mask("dbname=ideaforge", out, sizeof(out)), "dbname=ideaforge");
	ck_assert_str_eq(cfg_mask(NULL, out, sizeof(out)), "");
}
END_TEST

static Suite *cfg_suite(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc_ = tcase_create("core");
	tcase_add_checked_fixture(tc_, setup, teardown);
	tcase_add_test(tc_, test_defaults);
	tcase_add_test(tc_, test_program_prefix_and_defaults);
	tcase_add_test(tc_, test_mask_passwords);
	tcase_add_test(tc_, test_missing_file);
	tcase_add_test(tc_, test_file_parse);
	tcase_add_test(tc_, test_file_empty_value_and_last_wins);
	tcase_add_test(tc_, test_bool_forms);
	tcase_add_test(tc_, test_precedence);
	tcase_add_test(tc_, test_reload_resets_to_defaults);
	tcase_add_test(tc_, test_unknown_key_names_file_and_line);
	tcase_add_test(tc_, test_unknown_flag);
	tcase_add_test(tc_, test_line_without_equals);
	tcase_add_test(tc_, test_bad_int_names_key_and_value);
	tcase_add_test(tc_, test_int_bounds);
	tcase_add_test(tc_, test_bad_bool_and_enum);
	tcase_add_test(tc_, test_bad_env_names_variable);
	tcase_add_test(tc_, test_secret_value_not_echoed);
	tcase_add_test(tc_, test_dump_hides_secrets);
	tcase_add_test(tc_, test_int_is_decimal_unless_octal_key);
	tcase_add_test(tc_, test_known);
	tcase_add_test(tc_, test_srv_defaults_and_validate);
	suite_add_tcase(s, tc_);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cfg_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
