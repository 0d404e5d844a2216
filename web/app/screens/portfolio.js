// Portfolio: every product of the tenant (API.md 1.4), by status.
import { h, load, clear } from '../dom.js';
import { get } from '../api.js';
import { STATUSES } from '../products.js';
import { currentUser } from '../session.js';
import { barChart } from '../chart.js';

export async function render({ main, signal, title }) {
  title('Portfolio');
  const box = h('div');
  main.append(h('h1', null, 'Portfolio'), h('p', { class: 'muted' }, 'All products of your organisation.'), box);
  const data = await load(box, () => get('/api/products/portfolio', { signal }));
  if (!data) return;
  const items = data.portfolio || [];
  const counts = STATUSES.map((s) => ({ label: s, value: items.filter((p) => p.status === s).length }));
  clear(box,
    h('section', { class: 'card', 'aria-labelledby': 'pf-chart' }, h('h2', { id: 'pf-chart' }, 'Products by status'),
      barChart(counts, { title: 'Products by status', unit: 'products' })),
    h('h2', null, `${items.length} products`),
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Products table' }, h('table', null,
      h('caption', { class: 'sr-only' }, 'Products of the organisation'),
      h('thead', null, h('tr', null, ['Product', 'Status', 'Owner', 'Shares', 'Access'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, items.map((p) => h('tr', null,
        h('td', null, p.shared_with_me || p.user_id === currentUser().id ? h('a', { href: `/products/${p.id}` }, p.name) : p.name),
        h('td', null, p.status),
        h('td', null, p.owner_name || p.owner_email),
        h('td', null, String(p.share_count ?? 0)),
        h('td', null, p.shared_with_me ? 'shared with me' : '')))))));
}
