// Progress report, PRD review and PRD export of a product (API.md 1.11).
import { h, busy, load, clear, append, announce, fmtDate } from '../dom.js';
import { get, post, request } from '../api.js';
import { loadProduct, workspaceHeader } from '../products.js';
import { barChart } from '../chart.js';

const list = (items) => h('ul', null, (items || []).map((x) => h('li', null, typeof x === 'string' ? x : JSON.stringify(x))));

function showReport(box, r) {
  clear(box);
  if (!r || r.exists === false) { box.append(h('p', { class: 'muted' }, (r && r.message) || 'No progress report yet.')); return; }
  append(box, [
    h('p', { class: 'row' }, h('strong', null, `Overall: ${r.overall_score}%`),
      h('span', { class: `badge ${r.status === 'ready' ? 'ok' : 'warn'}` }, r.status === 'ready' ? 'Ready' : 'Needs attention'),
      h('span', { class: 'muted' }, fmtDate(r.updated_at || r.created_at))),
    r.summary ? h('p', null, r.summary) : null,
    barChart((r.phase_scores || []).slice().sort((a, b) => a.phase_order - b.phase_order)
      .map((s) => ({ label: s.phase_name, value: Math.round(s.score) })), { title: 'Score by phase', unit: '%' }),
    h('div', { class: 'cols' },
      r.missing_sections?.length ? h('div', null, h('h3', null, 'Missing sections'), list(r.missing_sections)) : null,
      r.recommendations?.length ? h('div', null, h('h3', null, 'Recommendations'), list(r.recommendations)) : null)]);
}

// The file name from Content-Disposition (filename="..."), else a default.
function fileName(res, fallback) {
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  return m ? decodeURIComponent(m[1]) : fallback;
}

export async function render({ main, params, signal, title }) {
  const box = h('div');
  main.append(box);
  const data = await load(box, () => Promise.all([
    loadProduct(params.id, signal),
    get(`/api/products/${encodeURIComponent(params.id)}/progress-report`, { signal }),
  ]));
  if (!data) return;
  const [p, report] = data;
  title(`Reports · ${p.name}`);
  const base = `/api/products/${p.id}`;

  // progress report
  const reportBox = h('div', { 'aria-live': 'polite', id: 'report' });
  const reportOut = h('div');
  const gen = h('button', { type: 'button', class: 'btn primary', 'data-busy': 'Generating…' }, report.exists ? 'Regenerate report' : 'Generate report');
  gen.addEventListener('click', () => busy(gen, async () => {
    showReport(reportBox, await post(base + '/generate-progress-report', {}));
    announce('Progress report ready');
  }, reportOut));
  showReport(reportBox, report);

  // PRD review
  const reviewBox = h('div', { 'aria-live': 'polite', id: 'review' });
  const reviewOut = h('div');
  const review = h('button', { type: 'button', class: 'btn', 'data-busy': 'Reviewing…' }, 'Review the PRD');
  review.addEventListener('click', () => busy(review, async () => {
    const r = await post(base + '/review-prd', {});
    clear(reviewBox,
      h('p', null, h('span', { class: `badge ${r.is_complete ? 'ok' : 'warn'}` }, r.is_complete ? 'Complete' : 'Incomplete')),
      r.missing_sections?.length ? [h('h3', null, 'Missing sections'), list(r.missing_sections)] : null,
      r.recommendations?.length ? [h('h3', null, 'Recommendations'), list(r.recommendations)] : null,
      r.warnings?.length ? [h('h3', null, 'Warnings'), list(r.warnings)] : null);
    announce('Review ready');
  }, reviewOut));

  // export
  const fmt = h('select', { id: 'export-format', name: 'format' },
    h('option', { value: 'markdown' }, 'Markdown (.md)'), h('option', { value: 'html' }, 'HTML (.html)'));
  const meta = h('input', { type: 'checkbox', id: 'export-meta', checked: true });
  // the export agent writes the PRD when the user has an AI provider (off: the template, instant)
  const ai = h('input', { type: 'checkbox', id: 'export-ai', checked: true });
  const exportOut = h('div', { 'aria-live': 'polite' });
  const exp = h('button', { type: 'submit', class: 'btn primary', id: 'export-btn', 'data-busy': 'Preparing…' }, 'Download PRD');
  const expForm = h('form', null,
    h('div', { class: 'field' }, h('label', { for: 'export-format' }, 'Format'), fmt),
    h('p', { class: 'choice' }, meta, h('label', { for: 'export-meta' }, 'Include metadata')),
    h('p', { class: 'choice' }, ai, h('label', { for: 'export-ai' }, 'Written by the export agent (off: the template)')),
    h('div', { class: 'row' }, exp), exportOut);
  expForm.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(exp, async () => {
      const res = await request(base + '/export-prd', {
        method: 'POST', raw: true, accept: '*/*', json: { format: fmt.value, include_metadata: meta.checked, use_ai: ai.checked },
      });
      const blob = await res.blob();
      const name = fileName(res, `PRD.${fmt.value === 'html' ? 'html' : 'md'}`);
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, class: 'hidden' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      exportOut.replaceChildren(h('p', { class: 'ok-text', role: 'status' }, `Downloaded ${name} (${Math.ceil(blob.size / 1024)} KiB).`));
    }, exportOut);
  });

  clear(box,
    workspaceHeader(p, 'reports'),
    h('section', { class: 'card', 'aria-labelledby': 'rep-h' }, h('h2', { id: 'rep-h' }, 'Progress report'),
      h('div', { class: 'row' }, gen), reportOut, reportBox),
    h('div', { class: 'cards' },
      h('section', { class: 'card', 'aria-labelledby': 'exp-h' }, h('h2', { id: 'exp-h' }, 'Export the PRD'), expForm),
      h('section', { class: 'card', 'aria-labelledby': 'rev-h' }, h('h2', { id: 'rev-h' }, 'PRD review'),
        h('div', { class: 'row' }, review), reviewOut, reviewBox)));
}
