// The frontend without a browser: the asset version, what nginx sends (cache headers, CSP),
// the size budget, and the pure modules (SSE parser, the chat's reconnection) under Node.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { BASE_URL } from './lib.mjs';

const top = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const web = path.join(top, 'web');
const files = (dir) => readdirSync(dir).flatMap((f) => {
  const p = path.join(dir, f);
  return statSync(p).isDirectory() ? files(p) : [p];
});

test('index.html references the current asset version and only files that exist', () => {
  execFileSync(path.join(top, 'scripts/web-stamp'), ['--check']); // throws with its message when stale
  const html = readFileSync(path.join(web, 'index.html'), 'utf8');
  const refs = [...html.matchAll(/(?:src|href)="(\/app\.[0-9a-f]+\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(refs.length >= 3, 'index.html loads its assets from /app.<version>/');
  for (const r of refs) {
    const f = path.join(web, 'app', r.replace(/^\/app\.[0-9a-f]+\//, ''));
    assert.doesNotThrow(() => statSync(f), `${r} is not a file under web/app/`);
  }
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
  assert.doesNotMatch(html, /\sstyle=|<style/i, 'no inline style');
});

test('the whole application is under 150 KiB compressed', () => {
  const all = files(web);
  const raw = all.reduce((n, f) => n + statSync(f).size, 0);
  const gz = all.reduce((n, f) => n + gzipSync(readFileSync(f), { level: 9 }).length, 0);
  console.log(`web/: ${all.length} files, ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`);
  assert.ok(gz < 150 * 1024, `${gz} bytes gzipped`);
});

test('nginx: index.html is never cached, versioned assets are cached for good, a strict CSP', async () => {
  const version = execFileSync(path.join(top, 'scripts/web-stamp'), ['--print'], { encoding: 'utf8' }).trim();
  for (const p of ['/', '/index.html', '/products/any/chat']) {
    const r = await fetch(BASE_URL + p);
    assert.equal(r.status, 200, p);
    assert.match(r.headers.get('cache-control') || '', /no-cache|no-store/, `${p} Cache-Control`);
    assert.match(await r.text(), new RegExp(`/app\\.${version}/main\\.js`), `${p} is the current index.html`);
    const csp = r.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'(;|$)/, 'script-src');
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, 'nothing unsafe');
    assert.match(csp, /frame-ancestors 'none'/);
  }
  for (const f of files(path.join(web, 'app'))) {
    const rel = path.relative(path.join(web, 'app'), f);
    const r = await fetch(`${BASE_URL}/app.${version}/${rel}`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(r.status, 200, rel);
    assert.match(r.headers.get('cache-control') || '', /max-age=\d{7,}/, `${rel} Cache-Control`);
    if (rel.endsWith('.js')) assert.match(r.headers.get('content-type'), /javascript/, `${rel} type`);
    await r.arrayBuffer();
  }
  const missing = await fetch(`${BASE_URL}/app.${version}/nothing-here.js`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).detail, 'Not Found');
});

test('the SSE parser: CRLF split across reads, comments, multi-line data, ids that persist', async () => {
  const { createParser } = await import('../../web/app/sse.js');
  const got = [];
  const p = createParser((e) => got.push(e));
  const stream = ': hello\r\nid: 1\r\nevent: progress\r\ndata: {"job_id":"j1"}\r\n\r\ndata: a\ndata: b\n\nid: 7\nevent: agent_chunk\ndata:x\r\rdata: tail';
  for (let i = 0; i < stream.length; i += 3) p.feed(stream.slice(i, i + 3)); // every split point
  p.end();
  assert.deepEqual(got, [
    { event: 'progress', data: '{"job_id":"j1"}', id: '1' },
    { event: 'message', data: 'a\nb', id: '1' },
    { event: 'agent_chunk', data: 'x', id: '7' },
    { event: 'message', data: 'tail', id: '7' },
  ]);
});

// A Response whose body sends `parts` and then, if `fail`, breaks like a dropped connection.
function sseResponse(parts, { fail = false, headers = {} } = {}) {
  const enc = new TextEncoder();
  let i = 0;
  const body = new ReadableStream({
    pull(c) {
      if (i < parts.length) c.enqueue(enc.encode(parts[i++]));
      else if (fail) c.error(new TypeError('network error'));
      else c.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream', ...headers } });
}

test('the chat stream reconnects with Last-Event-ID and loses no token', async () => {
  const { streamChat } = await import('../../web/app/ai.js');
  const calls = [];
  const saved = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    calls.push({ url, method: init.method, last: init.headers['Last-Event-ID'] });
    if (init.method === 'POST') {
      return sseResponse([
        'id: 1\nevent: progress\ndata: {"progress":0.1,"job_id":"job-9"}\n\n',
        'id: 2\nevent: agent_start\ndata: {"agent":"research"}\n\n',
        'id: 3\nevent: agent_chunk\ndata: {"agent":"research","chunk":"Hel"}\n\n',
      ], { fail: true });
    }
    return sseResponse([
      'id: 3\nevent: agent_chunk\ndata: {"agent":"research","chunk":"Hel"}\n\n', // a replay is ignored
      'id: 4\nevent: agent_chunk\ndata: {"agent":"research","chunk":"lo"}\n\n',
      'id: 5\nevent: complete\ndata: {"response":"Hello"}\n\n',
    ]);
  };
  try {
    let text = '';
    const types = [];
    const done = await streamChat({ query: 'q' }, (type, d) => {
      types.push(type);
      if (type === 'agent_chunk') text += d.chunk;
    });
    assert.equal(text, 'Hello');
    assert.equal(done.response, 'Hello');
    assert.deepEqual(types, ['progress', 'agent_start', 'agent_chunk', 'agent_chunk', 'complete']);
    assert.equal(calls.length, 2);
    assert.equal(calls[1].url, '/api/streaming/jobs/job-9/events');
    assert.equal(calls[1].method, 'GET');
    assert.equal(calls[1].last, '3');
  } finally {
    globalThis.fetch = saved;
  }
});

test('the chat stream takes the job id from the X-Job-Id header too, and says when it cannot resume', async () => {
  const { streamChat } = await import('../../web/app/ai.js');
  const saved = globalThis.fetch;
  const urls = [];
  globalThis.fetch = async (url, init) => {
    urls.push(url);
    if (init.method === 'POST') return sseResponse(['id: 1\nevent: agent_chunk\ndata: {"chunk":"a"}\n\n'], { fail: true, headers: { 'X-Job-Id': 'hdr-1' } });
    return new Response('{"detail":"Job not found"}', { status: 404, headers: { 'Content-Type': 'application/json' } });
  };
  try {
    await assert.rejects(streamChat({ query: 'q' }, () => {}), /Job not found/);
    assert.equal(urls[1], '/api/streaming/jobs/hdr-1/events');
  } finally {
    globalThis.fetch = saved;
  }
});

test('API errors: the detail string, the 422 list, Retry-After on 429', async () => {
  const { detailText } = await import('../../web/app/api.js');
  assert.equal(detailText({ detail: 'Product not found or access denied' }, 404), 'Product not found or access denied');
  assert.equal(detailText({ detail: [{ loc: ['body', 'email'], msg: 'value is not a valid email address', type: 'value_error' }] }, 422),
    'email: value is not a valid email address');
  assert.match(detailText(null, 502, 'Bad Gateway'), /502/);
});
