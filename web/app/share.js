// share.js - the share dialog: who has access, give access (user picker from
// /api/auth/users, view/edit/admin), revoke.
import { h, field, busy, load, clear, modal, announce, confirmDialog } from './dom.js';
import { get, post, del, newKey } from './api.js';
import { currentUser } from './session.js';

export function openShare(product) {
  const listBox = h('div', { 'aria-live': 'polite' });
  const user = h('select', { name: 'user' });
  const find = h('input', { type: 'search', name: 'find', autocomplete: 'off', placeholder: 'Name or email' });
  const perm = h('select', { name: 'permission' },
    h('option', { value: 'view' }, 'View'), h('option', { value: 'edit' }, 'Edit'), h('option', { value: 'admin' }, 'Admin'));
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Sharing…' }, 'Share');
  const form = h('form', null,
    field('Find a person', find),
    field('Person', user), field('Permission', perm),
    h('div', { class: 'row end' }, submit), out);
  const base = `/api/products/${product.id}`;
  let users = [];
  let choices = [];

  function fillPicker() {
    const term = find.value.trim().toLowerCase();
    const shown = choices.filter((u) => !term || `${u.full_name} ${u.email}`.toLowerCase().includes(term));
    clear(user, shown.length
      ? shown.map((u) => h('option', { value: u.id }, `${u.full_name || u.email} (${u.email})`))
      : h('option', { value: '' }, choices.length ? 'Nobody matches' : 'Everyone already has access'));
    submit.disabled = !shown.length;
  }
  find.addEventListener('input', fillPicker);

  async function refresh() {
    const data = await load(listBox, async () => {
      const [s, u] = await Promise.all([get(base + '/shares'), users.length ? { users } : get('/api/auth/users')]);
      users = u.users || [];
      return s;
    });
    if (!data) return;
    const shares = data.shares || [];
    const sharedIds = new Set(shares.map((s) => s.shared_with_user_id));
    const me = currentUser();
    choices = users.filter((u) => u.id !== me.id && u.id !== product.user_id && !sharedIds.has(u.id));
    fillPicker();
    clear(listBox, h('h3', null, 'People with access'), shares.length
      ? h('ul', { class: 'list' }, shares.map((s) => {
        const b = h('button', { type: 'button', class: 'btn small', 'aria-label': `Revoke access of ${s.user_name || s.user_email}`, 'data-busy': 'Revoking…' }, 'Revoke');
        b.addEventListener('click', async () => {
          if (!(await confirmDialog('Revoke access?', `${s.user_name || s.user_email} will no longer see “${product.name}”.`, 'Revoke'))) return;
          await busy(b, async () => { await del(`${base}/shares/${s.id}`); announce('Access revoked'); await refresh(); });
        });
        return h('li', { class: 'row spread' }, h('span', null, `${s.user_name || s.user_email} `, h('span', { class: 'badge' }, s.permission)), b);
      }))
      : h('p', { class: 'muted' }, 'Only the owner has access.'));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!user.value) return;
    busy(submit, async () => {
      await post(base + '/share', { shared_with_user_id: user.value, permission: perm.value }, { idempotent: newKey() });
      announce('Shared');
      await refresh();
    }, out);
  });

  modal(`Share “${product.name}”`, h('div', null, form, listBox));
  refresh();
  find.focus();
}
