// Agent dashboard: usage by agent, by phase and the 30-day trend as charts (API.md 6.3).
import { h, load, clear } from '../dom.js';
import { get } from '../api.js';
import { barChart, lineChart } from '../chart.js';
import { unavailableMessage } from '../ai.js';

export async function render({ main, signal, title }) {
  title('Agents');
  const box = h('div');
  main.append(h('h1', null, 'Agent dashboard'), box);
  let missing = null;
  const data = await load(box, async () => {
    try {
      return await get('/api/agents/usage-stats', { signal });
    } catch (err) {
      if (err.status === 404) { missing = unavailableMessage(err); return null; }
      throw err;
    }
  });
  if (missing) { clear(box, h('p', { class: 'notice', role: 'status' }, 'Agent usage statistics are not available on this server yet (the route answered 404).')); return; }
  if (!data) return;
  const agents = (data.agents || []).map((a) => ({ label: a.agent_name || a.agent_role, value: a.usage_count || 0 }));
  const phases = Object.entries(data.usage_by_phase || {}).map(([k, v]) => ({ label: k, value: v }));
  const trend = data.usage_trend || [];
  clear(box,
    h('p', { class: 'muted' }, `${data.total_usage ?? 0} agent answers by ${data.total_agents ?? agents.length} agents.`),
    h('div', { class: 'charts' },
      h('section', { class: 'card', 'aria-labelledby': 'ag-a' }, h('h2', { id: 'ag-a' }, 'Usage by agent'), barChart(agents, { title: 'Usage by agent', unit: 'answers' })),
      h('section', { class: 'card', 'aria-labelledby': 'ag-p' }, h('h2', { id: 'ag-p' }, 'Usage by phase'), phases.length ? barChart(phases, { title: 'Usage by phase', unit: 'answers' }) : h('p', { class: 'muted' }, 'No usage yet.')),
      h('section', { class: 'card', 'aria-labelledby': 'ag-t' }, h('h2', { id: 'ag-t' }, 'Last 30 days'), lineChart(trend, { title: 'Agent answers per day' }))),
    h('h2', null, 'Details'),
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Agent usage table' }, h('table', null,
      h('caption', { class: 'sr-only' }, 'Agent usage'),
      h('thead', null, h('tr', null, ['Agent', 'Answers', 'Share', 'Avg. time', 'Tokens', 'Last used'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, (data.agents || []).map((a) => h('tr', null,
        h('td', null, a.agent_name || a.agent_role), h('td', null, String(a.usage_count ?? 0)),
        h('td', null, `${a.usage_percentage ?? 0}%`), h('td', null, a.avg_processing_time ? `${Number(a.avg_processing_time).toFixed(1)} s` : '–'),
        h('td', null, String(a.total_tokens ?? 0)), h('td', null, a.last_used ? String(a.last_used).slice(0, 10) : '–')))))));
}
