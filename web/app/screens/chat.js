// Agent chat of a product: answers stream in token by token (agent_chunk), the agents at work
// are listed live (agent_start / agent_complete), Stop and Retry, the conversation history,
// and reconnection after a dropped connection (ai.js).
import { h, load, clear, errorBox, announce, fmtDate, humanize } from '../dom.js';
import { get } from '../api.js';
import { loadProduct, workspaceHeader } from '../products.js';
import { streamChat, unavailableMessage } from '../ai.js';
import { currentUser } from '../session.js';

const agentName = (a) => (a ? (a === 'rag' ? 'RAG' : humanize(String(a))) + (/agent$/i.test(a) ? '' : ' agent') : 'Agents');

function bubble(kind, who, text) {
  return h('li', { class: `msg ${kind}` }, h('span', { class: 'who' }, who), h('span', { class: 'body' }, text));
}

export async function render({ main, params, signal, title }) {
  const box = h('div');
  main.append(box);
  const data = await load(box, () => Promise.all([
    loadProduct(params.id, signal),
    get(`/api/db/conversation-history?product_id=${encodeURIComponent(params.id)}&limit=100`, { signal }),
  ]));
  if (!data) return;
  const [p, history] = data;
  title(`Agent chat · ${p.name}`);

  const messages = h('ol', { class: 'messages', 'aria-label': 'Conversation', tabindex: '0' });
  for (const m of history.messages || []) {
    const user = m.message_type === 'user';
    messages.append(bubble(user ? 'user' : 'agent', user ? 'You' : agentName(m.agent_name || m.agent_role),
      m.content || ''));
  }
  if (!messages.children.length) messages.append(h('li', { class: 'muted empty' }, 'No messages yet. Ask the agents about this product.'));

  const agents = h('ul', { class: 'agents-live' });
  const progress = h('p', { class: 'muted', role: 'status', id: 'chat-progress' }, 'Idle');
  const problem = h('div');
  const input = h('textarea', { id: 'chat-input', name: 'query', rows: '3', placeholder: 'Ask about market, requirements, a PRD…' });
  const send = h('button', { type: 'submit', class: 'btn primary', id: 'chat-send' }, 'Send');
  const stop = h('button', { type: 'button', class: 'btn', id: 'chat-stop', disabled: true }, 'Stop');
  const retry = h('button', { type: 'button', class: 'btn hidden', id: 'chat-retry' }, 'Retry');
  const form = h('form', { class: 'composer' },
    h('label', { for: 'chat-input', class: 'label' }, 'Your message'),
    input,
    h('p', { class: 'hint' }, 'Ctrl+Enter sends.'),
    h('div', { class: 'row' }, send, stop, retry));

  let running = null;
  let lastQuery = '';
  let lastBubbles = [];

  function setAgent(name, state) {
    if (!name) return;
    let li = agents.querySelector(`li[data-agent="${CSS.escape(name)}"]`);
    if (!li) {
      li = h('li', { 'data-agent': name }, h('span', null, agentName(name)), h('span', { class: 'badge' }));
      agents.append(li);
    }
    const badge = li.lastChild;
    badge.textContent = state === 'working' ? 'working…' : 'done';
    badge.className = state === 'working' ? 'badge warn' : 'badge ok';
    li.dataset.state = state;
  }

  async function ask(query) {
    lastQuery = query;
    clear(problem);
    retry.classList.add('hidden');
    messages.querySelector('.empty')?.remove();
    const mine = bubble('user', 'You', query);
    messages.append(mine);
    const body = h('span', { class: 'body' });
    const who = h('span', { class: 'who' }, 'Agents');
    const answer = h('li', { class: 'msg agent', 'data-state': 'streaming', 'aria-busy': 'true', id: 'answer-live' }, who, body);
    messages.querySelectorAll('#answer-live').forEach((el) => el.removeAttribute('id'));
    messages.append(answer);
    lastBubbles = [mine, answer];
    answer.scrollIntoView({ block: 'end' });
    clear(agents);
    progress.textContent = 'Sending…';
    const controller = new AbortController();
    running = controller;
    send.disabled = true;
    stop.disabled = false;
    let text = '';
    let chunks = 0;
    const finish = (state) => {
      answer.dataset.state = state;
      answer.removeAttribute('aria-busy');
      running = null;
      send.disabled = false;
      stop.disabled = true;
    };
    signal.addEventListener('abort', () => controller.abort(), { once: true });
    try {
      const done = await streamChat({
        user_id: currentUser().id, product_id: p.id, query,
        coordination_mode: 'enhanced_collaborative', context: { product_id: p.id },
      }, (type, d) => {
        if (type === 'progress') progress.textContent = d.message || 'Working…';
        else if (type === 'agent_start') { setAgent(d.agent, 'working'); progress.textContent = `${agentName(d.agent)} is working…`; }
        else if (type === 'agent_complete') setAgent(d.agent, 'done');
        else if (type === 'agent_chunk') {
          if (d.agent) who.textContent = agentName(d.agent);
          text += d.chunk || '';
          chunks++;
          body.textContent = text;
          answer.dataset.chunks = String(chunks);
          if (messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80) messages.scrollTop = messages.scrollHeight;
        } else if (type === 'error') {
          answer.append(h('span', { class: 'muted' }, `\n${agentName(d.agent)}: ${d.error || 'error'}`));
        }
      }, { signal: controller.signal, onReconnect: (n) => { progress.textContent = `Connection lost; reconnecting (${n})…`; } });
      body.textContent = (done && done.response) || text;
      if (done && done.metadata && done.metadata.primary_agent) who.textContent = agentName(done.metadata.primary_agent);
      finish('complete');
      progress.textContent = 'Answer complete';
      announce('The agents answered');
    } catch (err) {
      if (err.name === 'AbortError') {
        finish('stopped');
        if (!signal.aborted) {
          answer.append(h('span', { class: 'muted' }, text ? '\n(stopped)' : 'Stopped before an answer.'));
          progress.textContent = 'Stopped';
          retry.classList.remove('hidden');
        }
        return;
      }
      finish('failed');
      const unavailable = unavailableMessage(err);
      if (!text) answer.remove();
      progress.textContent = 'Idle';
      problem.append(errorBox(unavailable ? new Error(unavailable) : err, unavailable ? null : () => ask(lastQuery)));
      if (!unavailable) retry.classList.remove('hidden');
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const qtext = input.value.trim();
    if (!qtext || running) return;
    input.value = '';
    ask(qtext);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });
  stop.addEventListener('click', () => running && running.abort());
  retry.addEventListener('click', () => { if (!running && lastQuery) { lastBubbles.forEach((el) => el.remove()); ask(lastQuery); } });

  clear(box,
    workspaceHeader(p, 'chat'),
    h('div', { class: 'chat' },
      h('section', { 'aria-labelledby': 'conv-h' }, h('h2', { id: 'conv-h' }, 'Conversation'), messages, problem, form),
      h('aside', { 'aria-labelledby': 'agents-h', class: 'card' },
        h('h2', { id: 'agents-h' }, 'Agents at work'), progress, agents,
        h('p', { class: 'hint' }, history.messages?.length ? `${history.messages.length} earlier messages · last ${fmtDate(history.messages[history.messages.length - 1].created_at)}` : ''))));
}
