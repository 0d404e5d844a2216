// dom.js - building the page without HTML strings: h() makes elements (so text is always
// text, never markup), plus the few widgets every screen uses: status lines, error boxes with
// a retry, busy buttons, dialogs and dates.

export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, kids);
  return el;
}

export function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k == null || k === false) continue;
    el.append(k instanceof Node ? k : String(k));
  }
  return el;
}

// Empties el, then appends kids (as h() does: arrays flattened, null and false skipped).
export function clear(el, ...kids) {
  el.replaceChildren();
  return append(el, kids);
}

// A unique id for label/aria wiring.
let seq = 0;
export const uid = (p = 'f') => `${p}-${++seq}`;

// One polite live region for the whole page: "Saved", "Uploaded", ...
export function announce(msg) {
  const r = document.getElementById('announcer');
  if (!r) return;
  r.textContent = '';
  setTimeout(() => { r.textContent = msg; }, 30);
}

// The API's message for an error (ApiError carries `detail`), else a generic one.
export function messageOf(err) {
  if (err && err.name === 'AbortError') return 'Cancelled.';
  return (err && err.message) || 'Something went wrong.';
}

// An error box: the message and, when given, a Retry button.
export function errorBox(err, retry) {
  const box = h('div', { class: 'error', role: 'alert' }, h('p', { text: messageOf(err) }));
  if (retry) box.append(h('button', { type: 'button', class: 'btn', onclick: retry }, 'Retry'));
  return box;
}

// Runs fn while the button shows progress; shows the result (or error) in `status`.
export async function busy(button, fn, status) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (button.dataset.busy) button.textContent = button.dataset.busy;
  if (status) clear(status);
  try {
    return await fn();
  } catch (err) {
    if (status) status.append(errorBox(err, () => button.click()));
    else announce(messageOf(err));
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

// Loads data into `box` with a "Loading" line, an error box with Retry on failure.
export async function load(box, fn) {
  clear(box, h('p', { class: 'muted', role: 'status' }, 'Loading…'));
  box.setAttribute('aria-busy', 'true');
  try {
    const r = await fn();
    return r;
  } catch (err) {
    if (err && err.name === 'AbortError') return undefined;
    clear(box, errorBox(err, () => load(box, fn)));
    return undefined;
  } finally {
    box.removeAttribute('aria-busy');
    const s = box.querySelector(':scope > p[role=status]');
    if (s && s.textContent === 'Loading…') s.remove();
  }
}

// A labelled form field. `input` is an element; returns the wrapper.
export function field(label, input, hint) {
  const id = input.id || (input.id = uid());
  const kids = [h('label', { for: id }, label)];
  if (hint) {
    const hid = uid('hint');
    input.setAttribute('aria-describedby', hid);
    kids.push(h('p', { class: 'hint', id: hid }, hint));
  }
  kids.push(input);
  return h('div', { class: 'field' }, kids);
}

// A modal dialog (native <dialog>: focus trap, Escape, inert page). Returns {dialog, close}.
export function modal(title, body, { onclose } = {}) {
  const tid = uid('dlg');
  const close = () => dialog.close();
  const dialog = h('dialog', { 'aria-labelledby': tid, class: 'dialog' },
    h('div', { class: 'dialog-head' },
      h('h2', { id: tid }, title),
      h('button', { type: 'button', class: 'btn ghost', 'aria-label': 'Close', onclick: close }, '✕')),
    body);
  dialog.addEventListener('close', () => { dialog.remove(); if (onclose) onclose(); });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

// Asks for confirmation in a modal; resolves true/false.
export function confirmDialog(title, text, action = 'Delete') {
  return new Promise((resolve) => {
    let ok = false;
    const yes = h('button', { type: 'button', class: 'btn danger', onclick: () => { ok = true; m.close(); } }, action);
    const no = h('button', { type: 'button', class: 'btn', onclick: () => m.close() }, 'Cancel');
    const m = modal(title, h('div', null, h('p', { text }), h('div', { class: 'row end' }, no, yes)),
      { onclose: () => resolve(ok) });
    no.focus();
  });
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export function fmtDate(iso) {
  if (!iso) return '';
  const d = new Date(iso.length === 26 && !/[zZ+]/.test(iso.slice(19)) ? iso + 'Z' : iso);
  return Number.isNaN(d.getTime()) ? iso : dateFmt.format(d);
}

// "problem_statement" -> "Problem statement"
export function humanize(key) {
  const s = String(key).replace(/_/g, ' ').replace(/\bv0\b/gi, 'V0');
  return s.charAt(0).toUpperCase() + s.slice(1);
}
