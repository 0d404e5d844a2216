/* test-log.c - unit tests of lib/log.c: the logfmt line (timestamp, level, pid, request id),
 * quoting that keeps a client from forging fields or lines, level filtering, the access line,
 * long messages, and the pid of a forked child (the pid is cached: a fork must refresh it). */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char path[64];
static int saved_fd = -1;

/* Sends stderr to a temporary file. */
static void setup(void)
{
	snprintf(path, sizeof(path), "/tmp/test-log-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved_fd = dup(2);
	dup2(fd, 2);
	close(fd);
	log_set_level(LL_DEBUG);
}

static void teardown(void)
{
	dup2(saved_fd, 2);
	close(saved_fd);
	unlink(path);
}

/* Everything logged so far (malloc'd). */
static char *logged(void)
{
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void assert_match(const char *text, const char *re)
{
	regex_t rx;
	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	int rc = regexec(&rx, text, 0, NULL, 0);
	regfree(&rx);
	ck_assert_msg(rc == 0, "no match for /%s/ in:\n%s", re, text);
}

START_TEST(test_line_format)
{
	log_msg(LL_WARN, "rid-1", "hello %s %d", "world", 42);
	char *s = logged();
	char want[256];
	snprintf(want, sizeof(want),
		 "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z level=warn "
		 "pid=%d rid=rid-1 msg=\"hello world 42\"\n$",
		 (int)getpid());
	assert_match(s, want);
	free(s);
}
END_TEST

START_TEST(test_no_rid)
{
	log_msg(LL_INFO, NULL, "a");
	log_msg(LL_INFO, "", "b");
	char *s = logged();
	assert_match(s, "^ts=[^ ]+ level=info pid=[0-9]+ rid=- msg=\"a\"\n");
	assert_match(s, "\nts=[^ ]+ level=info pid=[0-9]+ rid=- msg=\"b\"\n$");
	free(s);
}
END_TEST

START_TEST(test_quoting_prevents_forgery)
{
	/* a client-controlled string cannot end the value, add fields or start a new line */
	log_msg(LL_INFO, "r", "user said %s", "x\" level=error\nts=forged \\ \t\x01\x7f");
	char *s = logged();
	ck_assert_int_eq(count_lines(s), 1);
	ck_assert_msg(
		strstr(s,
		       "msg=\"user said x\\\" level=error\\x0ats=forged \\\\ \\x09\\x01\\x7f\"\n") !=
			NULL,
		"%s", s);
	free(s);
}
END_TEST

START_TEST(test_levels)
{
	log_set_level(LL_WARN);
	ck_assert(!log_enabled(LL_INFO));
	ck_assert(log_enabled(LL_WARN));
	ck_assert(log_enabled(LL_ERROR));
	log_msg(LL_DEBUG, NULL, "d");
	log_msg(LL_INFO, NULL, "i");
	log_access("r", "GET", "/x", "/x", 200, 1);
	log_msg(LL_WARN, NULL, "w");
	log_msg(LL_ERROR, NULL, "e");
	char *s = logged();
	ck_assert_int_eq(count_lines(s), 2);
	ck_assert_ptr_nonnull(strstr(s, "level=warn"));
	ck_assert_ptr_nonnull(strstr(s, "level=error"));
	ck_assert_ptr_null(strstr(s, "msg=\"i\""));
	free(s);
	log_set_level(LL_INFO);
}
END_TEST

START_TEST(test_access_line)
{
	log_access("abc", "GET", "/api/products/{id}", "/api/products/x\"y", 404, 1234567);
	log_access("def", NULL, NULL, NULL, 500, 5);
	log_access("ghi", "POST", "/p", "/p", 201, 1000);
	char *s = logged();
	assert_match(s,
		     "^ts=[^ ]+ level=info pid=[0-9]+ rid=abc method=GET "
		     "route=\"/api/products/\\{id\\}\" path=\"/api/products/x\\\\\"y\" status=404 "
		     "dur_ms=1234\\.567\n");
	assert_match(s, "\nts=[^ ]+ level=info pid=[0-9]+ rid=def method=- route=\"-\" path=\"-\" "
			"status=500 dur_ms=0\\.005\n");
	assert_match(s,
		     "rid=ghi method=POST route=\"/p\" path=\"/p\" status=201 dur_ms=1\\.000\n$");
	free(s);
}
END_TEST

START_TEST(test_long_message_one_line)
{
	char *big = malloc(5000);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	log_msg(LL_INFO, "r", "%s", big);
	log_access("r", "GET", big, big, 200, 1);
	log_msg(LL_INFO, "r", "after");
	char *s = logged();
	ck_assert_int_eq(count_lines(s), 3);
	ck_assert_msg(strstr(s, "msg=\"after\"\n") != NULL, "%s", s + strlen(s) - 100);
	free(s);
	free(big);
}
END_TEST

START_TEST(test_pid_after_fork)
{
	/* the parent logs first (whatever it caches), then a child logs: its own pid */
	log_msg(LL_INFO, NULL, "parent");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		log_msg(LL_INFO, NULL, "child");
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	log_msg(LL_INFO, NULL, "parent again");
	char *s = logged();
	char want[128];
	snprintf(want, sizeof(want), "pid=%d rid=- msg=\"child\"", (int)pid);
	ck_assert_msg(strstr(s, want) != NULL, "%s", s);
	snprintf(want, sizeof(want), "pid=%d rid=- msg=\"parent again\"", (int)getpid());
	ck_assert_msg(strstr(s, want) != NULL, "%s", s);
	free(s);
}
END_TEST

START_TEST(test_clocks)
{
	int64_t a = now_us();
	usleep(20000);
	int64_t b = now_us();
	ck_assert_int_ge(b - a, 19000);
	ck_assert_int_lt(b - a, 2000000);
	ck_assert_int_gt(wall_us(), 1600000000LL * 1000000); /* after 2020 */
	ck_assert_str_eq(log_level_names[LL_ERROR], "error");
	ck_assert_ptr_null(log_level_names[LL__MAX]);
}
END_TEST

/* Under journald (JOURNAL_STREAM names stderr), lines start with the sd-daemon priority of
 * their level, so `journalctl -p err` finds the errors. */
START_TEST(test_journal_priorities)
{
	struct stat st;
	ck_assert_int_eq(fstat(2, &st), 0);
	char js[64];
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_msg(LL_ERROR, NULL, "e");
	log_msg(LL_WARN, NULL, "w");
	log_msg(LL_INFO, NULL, "i");
	log_access("r", "GET", "/x", "/x", 200, 1000);
	char *t = logged();
	assert_match(
		t, "^<3>ts=[^\n]* level=error [^\n]*msg=\"e\"\n<4>ts=[^\n]*msg=\"w\"\n<6>ts=[^\n]*"
		   "msg=\"i\"\n<6>ts=[^\n]* method=GET ");
	free(t);
	unsetenv("JOURNAL_STREAM");
}
END_TEST

/* Without the journal (another stream), no prefix. */
START_TEST(test_no_priorities_elsewhere)
{
	setenv("JOURNAL_STREAM", "1:2", 1);
	log_msg(LL_ERROR, NULL, "e");
	char *t = logged();
	assert_match(t, "^ts=");
	free(t);
	unsetenv("JOURNAL_STREAM");
}
END_TEST

/* A storm of errors is cut at the configured rate (burst of twice the rate), and the first
 * line after it reports the count of dropped lines. */
START_TEST(test_storm_is_rate_limited_and_counted)
{
	log_set_rate(10);
	for (int i = 0; i < 100; i++)
		log_msg(LL_ERROR, NULL, "storm %d", i);
	char *t = logged();
	/* the burst is 20; a very slow machine may refill a few lines while the loop runs */
	int passed = count_lines(t);
	ck_assert_msg(passed >= 20 && passed <= 25, "%d lines passed", passed);
	free(t);
	struct timespec ts = {0, 200 * 1000 * 1000}; /* two lines' worth of refill */
	nanosleep(&ts, NULL);
	log_msg(LL_ERROR, NULL, "after");
	t = logged();
	char want[160];
	snprintf(want, sizeof(want),
		 "msg=\"%d log lines dropped \\(more than 10 a second\\)\"\n[^\n]*msg=\"after\"",
		 100 - passed);
	assert_match(t, want);
	free(t);
	log_set_rate(0);
}
END_TEST

/* access_log = false silences access lines only. */
START_TEST(test_access_log_switch)
{
	log_set_access(false);
	log_access("r", "GET", "/x", "/x", 200, 1000);
	log_msg(LL_INFO, NULL, "still here");
	char *t = logged();
	ck_assert_int_eq(count_lines(t), 1);
	assert_match(t, "msg=\"still here\"");
	free(t);
	log_set_access(true);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_line_format);
	tcase_add_test(tc, test_journal_priorities);
	tcase_add_test(tc, test_no_priorities_elsewhere);
	tcase_add_test(tc, test_storm_is_rate_limited_and_counted);
	tcase_add_test(tc, test_access_log_switch);
	tcase_add_test(tc, test_no_rid);
	tcase_add_test(tc, test_quoting_prevents_forgery);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_access_line);
	tcase_add_test(tc, test_long_message_one_line);
	tcase_add_test(tc, test_pid_after_fork);
	tcase_add_test(tc, test_clocks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
