// Product workspace: the six lifecycle phases with their progress.
import { h, load, clear, fmtDate } from '../dom.js';
import { get } from '../api.js';
import { loadProduct, workspaceHeader, editProduct, canEdit, isOwner } from '../products.js';
import { openShare } from '../share.js';
import { go } from '../router.js';

export const STATUS_LABEL = { draft: 'Draft', in_progress: 'In progress', completed: 'Completed', reviewed: 'Reviewed' };

export async function render({ main, params, signal, title }) {
  const box = h('div');
  main.append(box);
  const data = await load(box, () => Promise.all([
    loadProduct(params.id, signal),
    get('/api/db/phases', { signal }),
    get(`/api/db/phase-submissions?product_id=${encodeURIComponent(params.id)}`, { signal }),
  ]));
  if (!data) return;
  const [p, phases, subs] = data;
  title(p.name);
  const byPhase = new Map((subs.submissions || []).map((s) => [s.phase_id, s]));
  const list = phases.phases || [];
  const done = list.filter((ph) => ['completed', 'reviewed'].includes(byPhase.get(ph.id)?.status)).length;
  const actions = [];
  if (canEdit(p)) actions.push(h('button', { type: 'button', class: 'btn', onclick: async () => { if (await editProduct(p)) go(location.pathname, { replace: true }); } }, 'Edit'));
  if (isOwner(p)) actions.push(h('button', { type: 'button', class: 'btn', onclick: () => openShare(p) }, 'Share'));
  clear(box,
    workspaceHeader(p, 'phases', actions),
    p.description ? h('p', null, p.description) : null,
    h('div', { class: 'progress-line' },
      h('label', { for: 'phase-progress' }, 'Lifecycle progress'),
      h('progress', { id: 'phase-progress', max: String(list.length || 6), value: String(done) }),
      h('span', null, `${done} of ${list.length} phases completed`)),
    h('h2', null, 'Lifecycle phases'),
    h('ol', { class: 'phases' }, list.map((ph) => {
      const s = byPhase.get(ph.id);
      const st = s ? s.status : 'not_started';
      return h('li', null, h('a', { class: 'phase-link', href: `/products/${p.id}/phases/${ph.id}` },
        h('strong', null, `${ph.phase_order}. ${ph.phase_name}`),
        h('span', { class: 'muted' }, ph.description),
        h('span', { class: 'row' },
          h('span', { class: `badge ${st === 'completed' || st === 'reviewed' ? 'ok' : st === 'not_started' ? '' : 'warn'}` }, STATUS_LABEL[st] || 'Not started'),
          s ? h('span', { class: 'muted' }, fmtDate(s.updated_at)) : null)));
    })));
}
