/* log.h - one line per event, logfmt, to stderr (journald under systemd).
 *
 * Every line: ts=<RFC 3339 UTC> level=<lvl> pid=<pid> rid=<request id or -> then fields.
 * Untrusted strings must go through the %s of log_msg only as values of msg: the whole message
 * is quoted and control characters escaped, so a client cannot forge a log line.
 */
#ifndef IF_LOG_H
#define IF_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LL_DEBUG, LL_INFO, LL_WARN, LL_ERROR, LL__MAX };

extern const char *const log_level_names[LL__MAX + 1]; /* NULL-terminated, for cfg enums */

/* Under systemd, lines carry the sd-daemon priority prefix ("<3>" error, "<4>" warning, "<6>"
 * info, "<7>" debug) when stderr is the journal (JOURNAL_STREAM names stderr's device and
 * inode), so `journalctl -p err` selects errors; elsewhere lines are plain. */

/* Sets the minimum level; lines below it cost one comparison. */
void log_set_level(enum log_level min);
bool log_enabled(enum log_level lvl);

/* Access lines on or off (the access_log setting), whatever the level. */
void log_set_access(bool on);

/* At most per_s message lines a second in this process (a burst of twice that), 0 = no limit:
 * a storm of errors is cut by our own logger, and the first line that passes again says how
 * many were dropped. Access lines are not counted (log_set_access switches them). */
void log_set_rate(int64_t per_s);

/* rid may be NULL. The formatted message is quoted and escaped as msg="...". */
void log_msg(enum log_level lvl, const char *rid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The access line of a request: method, route pattern, status, duration. */
void log_access(const char *rid, const char *method, const char *route, const char *path,
		int status, int64_t dur_us);

/* Monotonic and wall clocks in microseconds. */
int64_t now_us(void);
int64_t wall_us(void);

#endif
