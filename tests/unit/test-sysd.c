/* test-sysd.c - unit tests of lib/sysd.c: socket activation (LISTEN_FDS / LISTEN_PID, see
 * sd_listen_fds(3)) and readiness notification to NOTIFY_SOCKET (sd_notify(3)), against a
 * datagram socket the test binds itself. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sysd.h"

static void set_listen(long pid, const char *fds)
{
	char p[32];
	snprintf(p, sizeof(p), "%ld", pid);
	setenv("LISTEN_PID", p, 1);
	setenv("LISTEN_FDS", fds, 1);
	setenv("LISTEN_FDNAMES", "api", 1);
}

START_TEST(test_listen_fds_for_us)
{
	set_listen((long)getpid(), "1");
	ck_assert_int_eq(sysd_listen_fd(), 3);
	/* unset, so that children do not take the socket as theirs */
	ck_assert_ptr_null(getenv("LISTEN_PID"));
	ck_assert_ptr_null(getenv("LISTEN_FDS"));
	ck_assert_ptr_null(getenv("LISTEN_FDNAMES"));
	/* asked again: nothing passed any more */
	ck_assert_int_eq(sysd_listen_fd(), -1);
	set_listen((long)getpid(), "2"); /* more than one: the first is ours */
	ck_assert_int_eq(sysd_listen_fd(), 3);
}
END_TEST

START_TEST(test_listen_fds_not_for_us)
{
	set_listen((long)getpid() + 1, "1"); /* meant for another process */
	ck_assert_int_eq(sysd_listen_fd(), -1);
	ck_assert_ptr_null(getenv("LISTEN_FDS"));
	set_listen((long)getpid(), "0");
	ck_assert_int_eq(sysd_listen_fd(), -1);
	set_listen((long)getpid(), "x");
	ck_assert_int_eq(sysd_listen_fd(), -1);
	unsetenv("LISTEN_PID");
	setenv("LISTEN_FDS", "1", 1);
	ck_assert_int_eq(sysd_listen_fd(), -1);
	unsetenv("LISTEN_FDS");
	ck_assert_int_eq(sysd_listen_fd(), -1);
}
END_TEST

/* Binds a datagram socket at path (a '@' first: the abstract namespace); the fd. */
static int bind_notify(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	else
		unlink(path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
			 0);
	return fd;
}

/* The next datagram on fd as a string, or "" when none is waiting. */
static const char *received(int fd)
{
	static char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

START_TEST(test_notify_reaches_the_socket)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/test-sysd-%ld.sock", (long)getpid());
	int fd = bind_notify(path);
	setenv("NOTIFY_SOCKET", path, 1);
	sysd_notify("READY=1");
	ck_assert_str_eq(received(fd), "READY=1");
	sysd_notify("STATUS=serving 2 workers");
	ck_assert_str_eq(received(fd), "STATUS=serving 2 workers");
	ck_assert_str_eq(received(fd), ""); /* one datagram each, nothing more */
	close(fd);
	unlink(path);
}
END_TEST

START_TEST(test_notify_abstract_socket)
{
	char name[64];
	snprintf(name, sizeof(name), "@test-sysd-%ld", (long)getpid());
	int fd = bind_notify(name);
	setenv("NOTIFY_SOCKET", name, 1);
	sysd_notify("RELOADING=1");
	ck_assert_str_eq(received(fd), "RELOADING=1");
	close(fd);
}
END_TEST

START_TEST(test_notify_only_to_absolute_or_abstract)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/test-sysd-rel-%ld.sock", (long)getpid());
	int fd = bind_notify(path);
	/* relative (the same socket seen from /): not a notify socket, nothing is sent */
	ck_assert_int_eq(chdir("/"), 0);
	setenv("NOTIFY_SOCKET", path + 1, 1);
	sysd_notify("READY=1");
	ck_assert_str_eq(received(fd), "");
	/* unset: nothing either, and no crash */
	unsetenv("NOTIFY_SOCKET");
	sysd_notify("READY=1");
	ck_assert_str_eq(received(fd), "");
	/* longer than sun_path: refused rather than truncated to another name */
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longp, 1);
	sysd_notify("READY=1");
	/* a socket nobody listens on: the send fails quietly */
	setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock", 1);
	sysd_notify("STOPPING=1");
	unsetenv("NOTIFY_SOCKET");
	/* the bound socket still works: the refusals above were not a broken test socket */
	setenv("NOTIFY_SOCKET", path, 1);
	sysd_notify("READY=1");
	ck_assert_str_eq(received(fd), "READY=1");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sysd");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_listen_fds_for_us);
	tcase_add_test(tc, test_listen_fds_not_for_us);
	tcase_add_test(tc, test_notify_reaches_the_socket);
	tcase_add_test(tc, test_notify_abstract_socket);
	tcase_add_test(tc, test_notify_only_to_absolute_or_abstract);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
