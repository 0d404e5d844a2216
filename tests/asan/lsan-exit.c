/* lsan-exit.c - linked into ideaforge-api of the ASan build only (configure --enable-asan,
 * Makefile.am), with -Wl,--wrap=_exit: a worker ends with _exit(0) (lib/worker.c), which skips
 * the exit handlers and so LeakSanitizer's check at exit. This runs the check first, so that
 * `scripts/dev test --asan-stack` sees the leaks of every worker that stopped cleanly (issue 14
 * item 6). A leak makes LSan report (to ASAN_OPTIONS' log_path) and exit with its exit code. */
#include <sanitizer/lsan_interface.h>

void __real__exit(int status) __attribute__((noreturn));
void __wrap__exit(int status) __attribute__((noreturn));

void __wrap__exit(int status)
{
	if (status == 0)
		__lsan_do_leak_check();
	__real__exit(status);
}
