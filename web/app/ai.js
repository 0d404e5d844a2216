// ai.js - the streaming AI routes (API.md 1.8, 1.9, 5.7): the agents' chat with reconnection,
// and the phase form help. Both degrade to a clear message when the server has no AI
// (404: route not there; 400: "No AI provider is configured: ...").
import { request, ApiError } from './api.js';
import { readEvents } from './sse.js';

// The message to show when an AI route refuses (null: not such a refusal).
export function unavailableMessage(err) {
  if (!(err instanceof ApiError)) return null;
  if (err.status === 404) return 'AI features are not available on this server yet (the AI route answered 404). Everything else works; ask your administrator to enable the agents.';
  if (err.status === 400 || err.status === 503) return err.message;
  return null;
}

const parse = (data) => { try { return JSON.parse(data); } catch { return { text: data }; } };
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('Aborted', 'AbortError')); }, { once: true });
});

// streamChat(body, onEvent, {signal, onReconnect}): runs one multi-agent request.
// onEvent(type, data, id) gets every event once, in order, across reconnections (GET
// /api/streaming/jobs/{job_id}/events with Last-Event-ID). Resolves with the `complete` data.
export async function streamChat(body, onEvent, { signal, onReconnect, retries = 5 } = {}) {
  let jobId = null;
  let lastId = '';
  let complete = null;
  const seen = new Set();
  const handle = (ev) => {
    if (ev.id) {
      if (seen.has(ev.id)) return; // replayed after a reconnect
      seen.add(ev.id);
      lastId = ev.id;
    }
    const data = parse(ev.data);
    if (!jobId && data && data.job_id) jobId = data.job_id;
    if (ev.event === 'complete') complete = data;
    onEvent(ev.event, data, ev.id);
  };

  const res = await request('/api/streaming/multi-agent/stream', {
    method: 'POST', json: body, raw: true, signal, accept: 'text/event-stream',
  });
  jobId = res.headers.get('X-Job-Id');
  let attempt = 0;
  let current = res;
  for (;;) {
    try {
      await readEvents(current, handle);
    } catch (err) {
      if (signal?.aborted || err.name === 'AbortError') throw err;
      // the connection dropped: fall through to reconnect
    }
    if (complete) return complete;
    if (!jobId || attempt >= retries) {
      throw new Error('The connection was lost before the answer was complete. Retry to ask again.');
    }
    attempt++;
    if (onReconnect) onReconnect(attempt);
    await sleep(Math.min(4000, 400 * 2 ** (attempt - 1)), signal);
    try {
      current = await request(`/api/streaming/jobs/${encodeURIComponent(jobId)}/events`, {
        raw: true, signal, accept: 'text/event-stream', headers: lastId ? { 'Last-Event-ID': lastId } : {},
      });
    } catch (err) {
      if (err.name === 'AbortError' || (err instanceof ApiError && err.status && err.status !== 503)) throw err;
      current = null;
    }
    if (!current) continue;
  }
}

// formHelp(body, onText, {signal}): streams the phase form help (data-only SSE); onText gets
// the text so far; resolves with the final text.
export async function formHelp(body, onText, { signal } = {}) {
  const res = await request('/api/phase-form-help/stream', {
    method: 'POST', json: body, raw: true, signal, accept: 'text/event-stream',
  });
  let text = '';
  let error = null;
  let final = null;
  await readEvents(res, (ev) => {
    const d = parse(ev.data);
    if (d.type === 'chunk') { text += d.content || ''; onText(text); }
    else if (d.type === 'complete') { final = d.content ?? text; onText(final); }
    else if (d.type === 'error') error = d.error || 'The AI could not answer.';
  });
  if (error) throw new Error(error);
  return final ?? text;
}
