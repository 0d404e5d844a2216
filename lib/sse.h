/* sse.h - Server-Sent Events (WHATWG HTML, section 9.2 "Server-sent events"), both directions:
 * an incremental parser of "text/event-stream" bodies (9.2.6 "Interpreting an event stream")
 * and a writer of events and comments into a struct buf.
 *
 * The parser takes bytes in chunks of any size, split anywhere (inside a line, inside a CRLF
 * pair, inside the byte order mark), and calls back once per dispatched event. It keeps at
 * most max_event_bytes of one event (the current line plus the data gathered so far), so a
 * hostile or broken peer cannot make it grow without bound. What the spec leaves to the user
 * agent is decided here as follows: "retry" is ignored (no reconnection happens here), and an
 * event not ended by a blank line when the stream ends is discarded, as the spec requires.
 *
 * A parser is used by one thread at a time; it keeps no global state.
 */
#ifndef IF_SSE_H
#define IF_SSE_H

#include <stddef.h>

struct buf;
struct sse_parser;

/*
 * Called once per dispatched event. event is the event type ("message" when the stream gave
 * none), data the data buffer without its final LF (data_len bytes, NUL-terminated, may hold
 * other NULs), id the last event ID seen so far in the stream, or NULL when none was set (or
 * it was set to the empty string). All three are borrowed and valid only during the call.
 * Returning nonzero stops parsing: sse_parser_feed() then returns -1.
 */
typedef int (*sse_event_fn)(void *u, const char *event, const char *data, size_t data_len,
			    const char *id);

/* New parser calling fn(u, ...) for each event; one event (the current line plus its data)
 * may hold at most max_event_bytes (0 = 256 KiB). Owned by the caller (sse_parser_free);
 * NULL when out of memory or fn is NULL. */
struct sse_parser *sse_parser_new(size_t max_event_bytes, sse_event_fn fn, void *u);

/*
 * Feeds n bytes of the stream. Returns 0, or -1 when a line or an event exceeded the cap or
 * the callback returned nonzero; the parser is then failed for good (every later feed returns
 * -1) and the stream must be abandoned. data may be NULL when n is 0.
 */
int sse_parser_feed(struct sse_parser *p, const char *data, size_t n);

/* Releases the parser; a pending, undispatched event is discarded. Accepts NULL. */
void sse_parser_free(struct sse_parser *p);

/*
 * Appends one event to b: "id: <id>\n" (when id is not NULL), "event: <event>\n" (when event
 * is not NULL), one "data: <line>\n" per line of the len bytes of data (lines split at LF, CR
 * and CRLF, so the receiver rebuilds them joined by LF; len 0 gives one empty data line), then
 * the blank line that dispatches it. CR and LF inside id and event are dropped, since they
 * would end the field. data may be NULL when len is 0.
 */
void sse_write_event(struct buf *b, const char *id, const char *event, const char *data,
		     size_t len);

/* Appends a comment ": <text>\n" (one comment line per line of text; NULL = empty), which a
 * receiver ignores: useful as a keep-alive that also flushes proxies. */
void sse_write_comment(struct buf *b, const char *text);

#endif
