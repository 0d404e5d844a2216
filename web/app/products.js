// products.js - what several screens share about products: statuses, the edit dialog and the
// workspace header with its tabs.
import { h, field, busy, modal, announce } from './dom.js';
import { put, get } from './api.js';
import { currentUser } from './session.js';

export const STATUSES = ['ideation', 'build', 'operate', 'learn', 'govern', 'sunset'];

export const canEdit = (p) => ['owner', 'edit', 'admin'].includes(p.access_level);
export const isOwner = (p) => p.access_level === 'owner' || (currentUser() && p.user_id === currentUser().id);

// The product with the caller's access level (GET /api/products/{id} has no access_level, the
// list has it).
export async function loadProduct(id, signal) {
  const [p, list] = await Promise.all([
    get(`/api/products/${encodeURIComponent(id)}`, { signal }),
    get('/api/products', { signal }),
  ]);
  const mine = (list.products || []).find((x) => x.id === p.id);
  p.access_level = mine ? mine.access_level : (currentUser() && p.user_id === currentUser().id ? 'owner' : 'view');
  return p;
}

export function statusSelect(value) {
  return h('select', { name: 'status' }, STATUSES.map((s) => h('option', { value: s, selected: s === value }, s)));
}

// Edit name, description and status; resolves with the saved product or undefined.
export function editProduct(p) {
  return new Promise((resolve) => {
    let saved;
    const name = h('input', { name: 'name', value: p.name, required: true, maxlength: '200' });
    const desc = h('textarea', { name: 'description' }, p.description || '');
    const status = statusSelect(p.status);
    const out = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Saving…' }, 'Save');
    const form = h('form', null, field('Name', name), field('Description', desc), field('Status', status), out,
      h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => m.close() }, 'Cancel'), submit));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, async () => {
        saved = await put(`/api/products/${p.id}`, { name: name.value.trim(), description: desc.value, status: status.value });
        announce('Product saved');
        m.close();
      }, out);
    });
    const m = modal('Edit product', form, { onclose: () => resolve(saved) });
    name.focus();
  });
}

// Breadcrumb, title, status and the workspace tabs.
export function workspaceHeader(p, current, actions = []) {
  const base = `/products/${encodeURIComponent(p.id)}`;
  const tab = (href, label, key) => h('li', null, h('a', { href, 'aria-current': key === current ? 'page' : null }, label));
  return h('div', { class: 'workspace-head' },
    h('p', { class: 'crumbs' }, h('a', { href: '/' }, 'Products'), ' / ', p.name),
    h('div', { class: 'row spread' },
      h('h1', null, p.name),
      h('div', { class: 'row' }, actions)),
    h('p', { class: 'row muted' },
      h('span', { class: 'badge' }, p.status), ' ',
      p.owner_name ? `Owner: ${p.owner_name}` : '',
      p.access_level && p.access_level !== 'owner' ? h('span', { class: 'badge' }, `shared: ${p.access_level}`) : null),
    h('nav', { 'aria-label': 'Product sections' },
      h('ul', { class: 'tabs' },
        tab(base, 'Phases', 'phases'),
        tab(base + '/chat', 'Agent chat', 'chat'),
        tab(base + '/knowledge', 'Knowledge base', 'knowledge'),
        tab(base + '/reports', 'Reports & PRD', 'reports'))));
}
