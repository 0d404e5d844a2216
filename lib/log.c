/* log.c - logfmt lines to stderr, one write(2) per line so lines never interleave. */
#include "log.h"

#include <pthread.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const log_level_names[LL__MAX + 1] = {
	[LL_DEBUG] = "debug", [LL_INFO] = "info", [LL_WARN] = "warn",
	[LL_ERROR] = "error", [LL__MAX] = NULL,
};

static volatile int log_min = LL_INFO;
static atomic_bool log_access_on = true;
static atomic_int_fast64_t log_rate_per_s;   /* 0 = no limit */
static atomic_int_fast64_t log_tokens_x1000; /* the bucket, in thousandths of a line */
static atomic_int_fast64_t log_refill_us;    /* monotonic time of the last refill */
static atomic_int_fast64_t log_dropped;      /* lines dropped since the last report */

/* sd-daemon priorities (sd-daemon.h SD_ERR ...) of each level */
static const char *const log_prio[LL__MAX] = {"<7>", "<6>", "<4>", "<3>"};
static pthread_once_t log_journal_once = PTHREAD_ONCE_INIT;
static bool log_journal; /* stderr is the journal: prefix priorities */

static void log_journal_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	log_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
		      fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
		      (unsigned long long)st.st_ino == ino;
}

void log_set_access(bool on)
{
	atomic_store(&log_access_on, on);
}

void log_set_rate(int64_t per_s)
{
	atomic_store(&log_rate_per_s, per_s < 0 ? 0 : per_s);
	atomic_store(&log_tokens_x1000, (per_s < 0 ? 0 : per_s) * 2 * 1000);
	atomic_store(&log_refill_us, now_us());
}

/* Takes one line from the bucket; false when the storm limit drops it. Lock-free: a race may
 * let a line or two more through, never fewer. */
static bool log_take(void)
{
	int64_t rate = atomic_load(&log_rate_per_s);
	if (rate <= 0)
		return true;
	int64_t now = now_us(), last = atomic_load(&log_refill_us);
	if (now > last && atomic_compare_exchange_strong(&log_refill_us, &last, now)) {
		int64_t add = (now - last) * rate / 1000, cap = rate * 2 * 1000;
		int64_t t = atomic_fetch_add(&log_tokens_x1000, add) + add;
		if (t > cap)
			atomic_store(&log_tokens_x1000, cap);
	}
	if (atomic_fetch_sub(&log_tokens_x1000, 1000) >= 1000)
		return true;
	atomic_fetch_add(&log_tokens_x1000, 1000);
	atomic_fetch_add(&log_dropped, 1);
	return false;
}

void log_set_level(enum log_level min)
{
	log_min = (int)min;
}

bool log_enabled(enum log_level lvl)
{
	return (int)lvl >= log_min;
}

int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The pid of every line: getpid() is a system call (glibc no longer caches it), one per line
 * on the request path. Cached, and refreshed in the child of every fork(). */
static pid_t log_pid;
static pthread_once_t log_pid_once = PTHREAD_ONCE_INIT;

static void log_pid_refresh(void)
{
	log_pid = getpid();
}

static void log_pid_init(void)
{
	log_pid_refresh();
	pthread_atfork(NULL, NULL, log_pid_refresh);
}

/* Appends "ts=... level=... pid=... rid=..." to line; returns the length. The date and time
 * to the second are formatted once per second per thread. */
static size_t log_prefix(char *line, size_t cap, enum log_level lvl, const char *rid)
{
	static __thread time_t ts_sec = -1;
	static __thread char ts_text[72]; /* "YYYY-MM-DDTHH:MM:SS" (room for any int) */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != ts_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		snprintf(ts_text, sizeof(ts_text), "%04d-%02d-%02dT%02d:%02d:%02d",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
		ts_sec = ts.tv_sec;
	}
	pthread_once(&log_pid_once, log_pid_init);
	pthread_once(&log_journal_once, log_journal_init);
	int n = snprintf(line, cap, "%sts=%s.%03ldZ level=%s pid=%d rid=%s",
			 log_journal ? log_prio[lvl] : "", ts_text, ts.tv_nsec / 1000000,
			 log_level_names[lvl], (int)log_pid, rid && *rid ? rid : "-");
	return n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

/* Appends s quoted, escaping quotes, backslashes and control bytes. */
static size_t log_quote(char *line, size_t len, size_t cap, const char *s)
{
	if (len + 2 >= cap)
		return len;
	line[len++] = '"';
	for (; *s && len + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			line[len++] = '\\';
			line[len++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			len += (size_t)snprintf(line + len, cap - len, "\\x%02x", c);
		} else {
			line[len++] = (char)c;
		}
	}
	line[len++] = '"';
	return len;
}

static void log_write(char *line, size_t len)
{
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void log_msg(enum log_level lvl, const char *rid, const char *fmt, ...)
{
	if (!log_enabled(lvl) || !log_take())
		return;
	int64_t dropped = atomic_exchange(&log_dropped, 0);
	if (dropped > 0) {
		char note[256];
		size_t n = log_prefix(note, sizeof(note) - 1, LL_WARN, NULL);
		n += (size_t)snprintf(note + n, sizeof(note) - 1 - n,
				      " msg=\"%lld log lines dropped (more than %lld a second)\"",
				      (long long)dropped, (long long)atomic_load(&log_rate_per_s));
		log_write(note, n < sizeof(note) - 1 ? n : sizeof(note) - 2);
	}
	char msg[1024];
	char line[1600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t len = log_prefix(line, sizeof(line) - 1, lvl, rid);
	memcpy(line + len, " msg=", 5);
	len += 5;
	len = log_quote(line, len, sizeof(line) - 1, msg);
	log_write(line, len);
}

void log_access(const char *rid, const char *method, const char *route, const char *path,
		int status, int64_t dur_us)
{
	if (!log_enabled(LL_INFO) || !atomic_load(&log_access_on))
		return;
	char line[1200];
	size_t len = log_prefix(line, sizeof(line) - 1, LL_INFO, rid);
	len += (size_t)snprintf(line + len, sizeof(line) - 1 - len,
				" method=%s route=", method ? method : "-");
	len = log_quote(line, len, sizeof(line) - 1, route ? route : "-");
	if (len < sizeof(line) - 8) {
		memcpy(line + len, " path=", 6);
		len += 6;
		len = log_quote(line, len, sizeof(line) - 1, path ? path : "-");
	}
	if (len < sizeof(line) - 1)
		len += (size_t)snprintf(line + len, sizeof(line) - 1 - len,
					" status=%d dur_ms=%lld.%03lld", status,
					(long long)(dur_us / 1000), (long long)(dur_us % 1000));
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	log_write(line, len);
}
