// api.js - the one way the application talks to the server (API.md paths only).
// Same-origin fetch with the session cookie (HttpOnly, SameSite=Lax: the page never sees the
// token). Errors become ApiError with the server's `detail` (a string, or FastAPI's 422 list);
// a 401 on any call sends the user to sign-in and back to where they were afterwards.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// The text a person should read for an error body.
export function detailText(body, status, statusText) {
  const d = body && body.detail;
  if (typeof d === 'string' && d) return d;
  if (Array.isArray(d) && d.length) {
    return d.map((e) => {
      const loc = Array.isArray(e.loc) ? e.loc.filter((p) => p !== 'body').join('.') : '';
      return (loc ? loc + ': ' : '') + (e.msg || 'invalid value');
    }).join('; ');
  }
  if (status === 0) return 'The server could not be reached. Check your connection and retry.';
  return `The server answered ${status}${statusText ? ' ' + statusText : ''}.`;
}

async function errorFrom(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  let msg = detailText(body, res.status, res.statusText);
  if (res.status === 429) {
    const after = res.headers.get('Retry-After');
    if (after) msg += ` Try again in ${after} s.`;
  }
  return new ApiError(res.status, msg, body);
}

// request(path, {method, json, form, headers, signal, raw, idempotent, quiet401})
//   json: a body sent as JSON; form: a FormData (multipart);
//   raw: return the Response itself (streams, downloads) once its status is 2xx;
//   idempotent: send an Idempotency-Key so a retried create is not done twice;
//   quiet401: do not redirect to sign-in on 401 (the sign-in screen's own calls).
export async function request(path, opts = {}) {
  const init = {
    method: opts.method || (opts.json !== undefined || opts.form ? 'POST' : 'GET'),
    credentials: 'same-origin',
    headers: { Accept: opts.accept || 'application/json', ...(opts.headers || {}) },
    signal: opts.signal,
    cache: 'no-store',
  };
  if (opts.json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.json);
  } else if (opts.form) {
    init.body = opts.form;
  }
  if (opts.idempotent) init.headers['Idempotency-Key'] = opts.idempotent;
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, detailText(null, 0));
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !opts.quiet401) onUnauthorized(err);
    throw err;
  }
  if (opts.raw) return res;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => request(path, opts);
export const post = (path, json, opts) => request(path, { ...opts, method: 'POST', json: json ?? {} });
export const put = (path, json, opts) => request(path, { ...opts, method: 'PUT', json });
export const del = (path, opts) => request(path, { ...opts, method: 'DELETE' });

// A fresh key for one user action (its retries reuse it).
export const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());

export const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') s.set(k, v);
  const str = s.toString();
  return str ? '?' + str : '';
};
