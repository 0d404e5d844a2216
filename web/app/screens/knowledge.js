// Knowledge base of a product: add an article, upload a document, search with the matches
// highlighted, delete (API.md 1.5 knowledge articles, 1.12 uploads).
import { h, field, busy, load, clear, announce, fmtDate, confirmDialog, uid } from '../dom.js';
import { get, post, del, request, newKey, q } from '../api.js';
import { loadProduct, workspaceHeader, canEdit } from '../products.js';

// Text with every case-insensitive occurrence of `term` wrapped in <mark>.
export function highlight(text, term) {
  const out = [];
  if (!term) return [text];
  const lower = text.toLowerCase();
  const t = term.toLowerCase();
  let i = 0;
  for (;;) {
    const j = lower.indexOf(t, i);
    if (j < 0) break;
    if (j > i) out.push(text.slice(i, j));
    out.push(h('mark', null, text.slice(j, j + t.length)));
    i = j + t.length;
  }
  out.push(text.slice(i));
  return out;
}

// Up to ~240 characters around the first match (or the start).
function snippet(text, term) {
  const j = term ? text.toLowerCase().indexOf(term.toLowerCase()) : -1;
  if (text.length <= 240) return text;
  const start = Math.max(0, j - 100);
  return (start ? '…' : '') + text.slice(start, start + 240) + (start + 240 < text.length ? '…' : '');
}

export async function render({ main, params, signal, title }) {
  const box = h('div');
  main.append(box);
  const p = await load(box, () => loadProduct(params.id, signal));
  if (!p) return;
  title(`Knowledge base · ${p.name}`);
  const editable = canEdit(p);
  const results = h('div', { 'aria-live': 'polite', id: 'kb-results' });
  const search = h('input', { type: 'search', name: 'search', id: 'kb-search', autocomplete: 'off' });
  const searchForm = h('form', { role: 'search', class: 'row bottom' },
    h('div', { class: 'grow' }, field('Search the knowledge base', search)),
    h('button', { type: 'submit', class: 'btn' }, 'Search'));

  async function refresh() {
    const term = search.value.trim();
    const data = await load(results, () => get('/api/db/knowledge-articles' + q({ product_id: p.id, search: term, limit: 100 }), { signal }));
    if (!data) return;
    const arts = data.articles || [];
    clear(results,
      h('p', { class: 'muted', role: 'status' }, term ? `${arts.length} result${arts.length === 1 ? '' : 's'} for “${term}”` : `${arts.length} article${arts.length === 1 ? '' : 's'}`),
      arts.length ? h('ul', { class: 'list' }, arts.map((a) => article(a, term))) : null);
  }

  function article(a, term) {
    const kids = [
      h('h3', null, highlight(a.title || '(untitled)', term)),
      h('p', { class: 'muted' }, `${a.source === 'local_upload' ? 'Uploaded document' : 'Article'} · ${fmtDate(a.created_at)}`),
      h('p', { class: 'kb-content' }, highlight(snippet(a.content || '', term), term)),
    ];
    if (editable) {
      const b = h('button', { type: 'button', class: 'btn small', 'aria-label': `Delete ${a.title}`, 'data-busy': 'Deleting…' }, 'Delete');
      b.addEventListener('click', async () => {
        if (!(await confirmDialog('Delete article?', `“${a.title}” will be removed from the knowledge base.`))) return;
        await busy(b, async () => { await del(`/api/db/knowledge-articles/${a.id}`); announce('Article deleted'); await refresh(); });
      });
      kids.push(b);
    }
    return h('li', { class: 'article' }, kids);
  }

  searchForm.addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
  search.addEventListener('search', () => { if (!search.value) refresh(); });

  clear(box, workspaceHeader(p, 'knowledge'), searchForm);
  if (editable) box.append(h('div', { class: 'cards' }, articleForm(p, refresh), uploadForm(p, refresh)));
  box.append(h('h2', null, 'Articles and documents'), results);
  await refresh();
}

function articleForm(p, refresh) {
  const t = h('input', { name: 'title', required: true, maxlength: '500' });
  const c = h('textarea', { name: 'content', rows: '4', required: true });
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Adding…' }, 'Add article');
  const hid = uid('h');
  const form = h('form', { class: 'card', 'aria-labelledby': hid }, h('h2', { id: hid }, 'Add an article'),
    field('Title', t), field('Content', c), h('div', { class: 'row' }, submit), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!t.value.trim() || !c.value.trim()) { out.replaceChildren(h('p', { class: 'error', role: 'alert' }, 'Enter a title and some content.')); return; }
    busy(submit, async () => {
      await post('/api/db/knowledge-articles', { product_id: p.id, title: t.value.trim(), content: c.value, source: 'manual' }, { idempotent: newKey() });
      t.value = ''; c.value = '';
      out.replaceChildren(h('p', { class: 'ok-text' }, 'Article added.'));
      await refresh();
    }, out);
  });
  return form;
}

function uploadForm(p, refresh) {
  const file = h('input', { type: 'file', name: 'file', accept: '.txt,.md,.markdown,.json,.csv,.xml,text/plain,text/markdown,application/json,text/csv,application/xml' });
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Uploading…' }, 'Upload');
  const hid = uid('h');
  const form = h('form', { class: 'card', 'aria-labelledby': hid }, h('h2', { id: hid }, 'Upload a document'),
    field('Document', file, 'Text, Markdown, JSON, CSV or XML; up to 5 MiB.'), h('div', { class: 'row' }, submit), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) { out.replaceChildren(h('p', { class: 'error', role: 'alert' }, 'Choose a file first.')); file.focus(); return; }
    if (f.size > 5 * 1024 * 1024) { out.replaceChildren(h('p', { class: 'error', role: 'alert' }, 'The file is larger than 5 MiB.')); return; }
    busy(submit, async () => {
      const fd = new FormData();
      fd.append('product_id', p.id);
      fd.append('file', f, f.name);
      await request('/api/documents/upload', { method: 'POST', form: fd, idempotent: newKey() });
      file.value = '';
      out.replaceChildren(h('p', { class: 'ok-text' }, `Uploaded ${f.name}.`));
      announce(`Uploaded ${f.name}`);
      await refresh();
    }, out);
  });
  return form;
}
