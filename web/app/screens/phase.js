// One lifecycle phase of a product: its form (API.md 1.5 phase submissions), saved as a
// draft or completed, with the AI's help beside each field (API.md 1.9).
import { h, field, busy, load, clear, announce, humanize, fmtDate, errorBox } from '../dom.js';
import { get, post } from '../api.js';
import { loadProduct, workspaceHeader, canEdit } from '../products.js';
import { formHelp, unavailableMessage } from '../ai.js';
import { STATUS_LABEL } from './product.js';

export async function render({ main, params, signal, title }) {
  const box = h('div');
  main.append(box);
  const pid = encodeURIComponent(params.id);
  const data = await load(box, () => Promise.all([
    loadProduct(params.id, signal),
    get('/api/db/phases', { signal }),
    get(`/api/db/phase-submissions/${pid}/${encodeURIComponent(params.phase)}`, { signal }),
  ]));
  if (!data) return;
  const [p, phasesData, sub] = data;
  const phases = phasesData.phases || [];
  const idx = phases.findIndex((x) => x.id === params.phase);
  if (idx < 0) { clear(box, h('h1', null, 'Phase not found'), h('p', null, h('a', { href: `/products/${p.id}` }, 'Back to the phases'))); return; }
  const phase = phases[idx];
  title(`${phase.phase_name} · ${p.name}`);
  const editable = canEdit(p);
  const formData = { ...((sub && sub.form_data) || {}) };
  const fields = phase.required_fields || [];
  const status = h('p', { class: 'muted', id: 'sub-status' }, sub ? `${STATUS_LABEL[sub.status] || sub.status} · saved ${fmtDate(sub.updated_at)}` : 'Not started');
  const out = h('div', { 'aria-live': 'polite' });
  const inputs = {};

  const form = h('form', { class: 'card', 'aria-labelledby': 'phase-h' });
  fields.forEach((name, i) => {
    const value = typeof formData[name] === 'string' ? formData[name] : formData[name] == null ? '' : JSON.stringify(formData[name]);
    const ta = h('textarea', { name, rows: '5', readonly: !editable }, value);
    inputs[name] = ta;
    const wrap = field(humanize(name), ta, (phase.template_prompts || [])[i]);
    if (editable) wrap.append(helpControls(p, phase, name, ta, phase.template_prompts?.[i], signal));
    form.append(wrap);
  });

  const save = (st, button) => busy(button, async () => {
    for (const [k, ta] of Object.entries(inputs)) formData[k] = ta.value;
    await post('/api/db/phase-submissions', { product_id: p.id, phase_id: phase.id, form_data: formData, status: st });
    status.textContent = `${STATUS_LABEL[st]} · saved just now`;
    announce(st === 'completed' ? 'Phase saved and marked complete' : 'Draft saved');
    out.replaceChildren(h('p', { class: 'ok-text', role: 'status' }, st === 'completed' ? 'Saved and marked complete.' : 'Draft saved.'));
  }, out);

  if (editable) {
    const draft = h('button', { type: 'button', class: 'btn', 'data-busy': 'Saving…' }, 'Save draft');
    const complete = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Saving…' }, 'Save and mark complete');
    draft.addEventListener('click', () => save('draft', draft));
    form.addEventListener('submit', (e) => { e.preventDefault(); save('completed', complete); });
    form.append(h('div', { class: 'row' }, draft, complete), out);
  } else {
    form.append(h('p', { class: 'notice' }, 'You can view this phase; editing needs edit access from the owner.'));
  }

  const prev = phases[idx - 1], next = phases[idx + 1];
  clear(box,
    workspaceHeader(p, 'phases'),
    h('h2', { id: 'phase-h' }, `${phase.phase_order}. ${phase.phase_name}`),
    h('p', null, phase.description), status,
    form,
    h('nav', { class: 'row spread', 'aria-label': 'Other phases' },
      prev ? h('a', { href: `/products/${p.id}/phases/${prev.id}` }, `← ${prev.phase_name}`) : h('span'),
      next ? h('a', { href: `/products/${p.id}/phases/${next.id}` }, `${next.phase_name} →`) : h('span')));
}

// "Help with AI" for one field: streams the expert's suggestion, which the user may insert.
function helpControls(p, phase, name, ta, prompt, signal) {
  const outId = `help-${name}`;
  const result = h('div', { class: 'help-out hidden', id: outId, 'aria-live': 'polite' });
  const length = h('select', { 'aria-label': `Answer length for ${humanize(name)}` },
    h('option', { value: 'short' }, 'Short'), h('option', { value: 'verbose' }, 'Detailed'));
  const ask = h('button', { type: 'button', class: 'btn small', 'aria-controls': outId, 'data-busy': 'Thinking…' }, 'Help with AI');
  ask.addEventListener('click', () => busy(ask, async () => {
    result.classList.remove('hidden');
    const text = h('p');
    clear(result, text);
    try {
      const answer = await formHelp({
        product_id: p.id, phase_id: phase.id, phase_name: phase.phase_name, current_field: name,
        current_prompt: prompt || humanize(name), user_input: ta.value, response_length: length.value,
      }, (t) => { text.textContent = t; }, { signal });
      result.append(h('div', { class: 'row' },
        h('button', { type: 'button', class: 'btn small', onclick: () => { ta.value = answer; ta.focus(); announce('Suggestion inserted'); } }, 'Use this text'),
        h('button', { type: 'button', class: 'btn small', onclick: () => { ta.value = (ta.value ? ta.value + '\n\n' : '') + answer; ta.focus(); } }, 'Append'),
        h('button', { type: 'button', class: 'btn small ghost', onclick: () => result.classList.add('hidden') }, 'Dismiss')));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(result, errorBox(unavailableMessage(err) ? new Error(unavailableMessage(err)) : err, unavailableMessage(err) ? null : () => ask.click()));
    }
  }));
  return h('div', null, h('div', { class: 'row' }, ask, length), result);
}
