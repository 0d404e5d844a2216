// sse.js - a small Server-Sent Events parser for fetch() streams (EventSource cannot POST).
// Follows the WHATWG event-stream rules: lines end in CRLF, LF or CR; "field: value" with one
// optional space; a blank line dispatches; ":" starts a comment; `id` persists across events.

export function createParser(onEvent) {
  let buf = '';
  let data = [];
  let event = '';
  let lastId = '';

  function line(l) {
    if (l === '') {
      if (data.length) onEvent({ event: event || 'message', data: data.join('\n'), id: lastId });
      data = [];
      event = '';
      return;
    }
    if (l[0] === ':') return;
    const i = l.indexOf(':');
    const name = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (name === 'data') data.push(value);
    else if (name === 'event') event = value;
    else if (name === 'id' && !value.includes('\0')) lastId = value;
  }

  return {
    feed(text) {
      buf += text;
      let start = 0;
      for (let i = 0; i < buf.length; i++) {
        const c = buf[i];
        if (c === '\n' || c === '\r') {
          if (c === '\r' && i + 1 === buf.length) break; // a CR at the end may be half a CRLF
          line(buf.slice(start, i));
          if (c === '\r' && buf[i + 1] === '\n') i++;
          start = i + 1;
        }
      }
      buf = buf.slice(start);
    },
    // End of stream: a last event without its blank line still counts.
    end() {
      if (buf) { line(buf.replace(/\r$/, '')); buf = ''; }
      line('');
    },
    get lastId() { return lastId; },
  };
}

// Reads a fetch Response body as SSE, calling onEvent for each event; resolves at its end.
export async function readEvents(response, onEvent) {
  const parser = createParser(onEvent);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  parser.feed(decoder.decode());
  parser.end();
  return parser.lastId;
}
