// Dashboard: my products and those shared with me; create, edit, delete.
import { h, field, busy, load, clear, fmtDate, confirmDialog, announce } from '../dom.js';
import { get, post, del, newKey } from '../api.js';
import { go } from '../router.js';
import { editProduct, canEdit, isOwner } from '../products.js';

export async function render({ main, signal, title }) {
  title('Products');
  const list = h('div');
  main.append(
    h('div', { class: 'row spread' }, h('h1', null, 'Products')),
    createForm(),
    list);
  await refresh(list, signal);
}

function createForm() {
  const name = h('input', { name: 'name', required: true, maxlength: '200', autocomplete: 'off' });
  const desc = h('textarea', { name: 'description', rows: '2' });
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Creating…' }, 'Create product');
  let key = newKey();
  const form = h('form', { class: 'card', 'aria-labelledby': 'new-h' },
    h('h2', { id: 'new-h' }, 'New product'),
    field('Product name', name), field('Description', desc, 'Optional: one or two sentences about the idea.'),
    h('div', { class: 'row' }, submit), out);
  form.addEventListener('input', () => { key = newKey(); });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!name.value.trim()) { name.focus(); out.replaceChildren(h('p', { class: 'error', role: 'alert' }, 'Enter a product name.')); return; }
    busy(submit, async () => {
      const p = await post('/api/products', { name: name.value.trim(), description: desc.value.trim() }, { idempotent: key });
      announce('Product created');
      go(`/products/${p.id}`);
    }, out);
  });
  return form;
}

async function refresh(box, signal) {
  const data = await load(box, () => get('/api/products', { signal }));
  if (!data) return;
  const products = data.products || [];
  const mine = products.filter((p) => p.access_level === 'owner');
  const shared = products.filter((p) => p.access_level !== 'owner');
  clear(box,
    section('My products', mine, 'You have no products yet. Create one above.', box, signal),
    section('Shared with me', shared, 'Nothing is shared with you yet.', box, signal));
}

function section(label, items, empty, box, signal) {
  const id = 'h-' + label.replace(/\W+/g, '-').toLowerCase();
  return h('section', { 'aria-labelledby': id },
    h('h2', { id }, `${label} (${items.length})`),
    items.length ? h('ul', { class: 'cards' }, items.map((p) => card(p, box, signal))) : h('p', { class: 'muted' }, empty));
}

function card(p, box, signal) {
  const actions = [h('a', { class: 'btn small', href: `/products/${p.id}` }, 'Open', h('span', { class: 'sr-only' }, ' ' + p.name))];
  if (canEdit(p)) {
    actions.push(h('button', {
      type: 'button', class: 'btn small', 'aria-label': `Edit ${p.name}`,
      onclick: async () => { if (await editProduct(p)) refresh(box, signal); },
    }, 'Edit'));
  }
  if (isOwner(p)) {
    const b = h('button', { type: 'button', class: 'btn small', 'aria-label': `Delete ${p.name}`, 'data-busy': 'Deleting…' }, 'Delete');
    b.addEventListener('click', async () => {
      if (!(await confirmDialog('Delete product?', `“${p.name}” and all of its phases, chat and knowledge will be deleted.`))) return;
      await busy(b, async () => { await del(`/api/products/${p.id}`); announce('Product deleted'); refresh(box, signal); });
    });
    actions.push(b);
  }
  return h('li', { class: 'card' },
    h('h3', null, h('a', { href: `/products/${p.id}` }, p.name)),
    h('p', { class: 'row' }, h('span', { class: 'badge' }, p.status),
      p.access_level !== 'owner' ? h('span', { class: 'badge' }, `${p.access_level} · ${p.owner_name || p.owner_email}`) : null),
    p.description ? h('p', { class: 'muted' }, p.description) : null,
    h('p', { class: 'muted' }, 'Updated ', fmtDate(p.updated_at)),
    h('div', { class: 'card-actions' }, actions));
}
