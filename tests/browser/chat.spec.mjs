// The AI screens against the real streaming routes (API.md 1.8, 1.9, 5.7): the test stack's
// ideaforge-agentd and fake provider. Without them these tests fail, saying so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as L from './lib.mjs';

let browser;
before(async () => {
  L.prepareStack();
  browser = await L.launch();
});
after(async () => { await browser?.close(); });

// Fails with a clear message when the route is not there or has no provider.
async function requireRoute(p, path) {
  const r = await p.request.post(path, { data: {} });
  assert.notEqual(r.status(), 404,
    `POST ${path} answered 404: the AI routes (and ideaforge-agentd) are not in this stack. ` +
    'scripts/dev test starts them.');
  if (r.status() === 400) {
    const body = await r.json().catch(() => ({}));
    assert.doesNotMatch(String(body.detail), /No AI provider/i, `POST ${path}: ${body.detail} (the test stack should configure the fake provider)`);
  }
}

test('ask the agents: tokens arrive before the answer completes, the agents at work are shown', { timeout: 120000 }, async () => {
  const u = L.newUser('Chat User');
  const p = await L.newPage(browser);
  p.setDefaultTimeout(60000);
  await L.signIn(p, u);
  await requireRoute(p, '/api/streaming/multi-agent/stream');
  const prod = await L.apiCreateProduct(p, 'Chat Product', 'A note-taking app for product teams');
  await p.goto(`/products/${prod.id}/chat`);
  await p.getByLabel('Your message').waitFor();
  // Watch the answer as it grows: every change of its text, with its state at that moment.
  await p.evaluate(() => {
    window.__seen = [];
    window.__agents = new Set();
    new MutationObserver(() => {
      const a = document.getElementById('answer-live');
      if (a) window.__seen.push({ state: a.dataset.state, len: a.querySelector('.body').textContent.length });
      document.querySelectorAll('.agents-live li[data-state="working"]').forEach((li) => window.__agents.add(li.dataset.agent));
    }).observe(document.querySelector('main'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await p.getByLabel('Your message').fill('What are the main risks of this product idea?');
  await p.getByRole('button', { name: 'Send' }).click();
  const answer = p.locator('#answer-live');
  await p.locator('#answer-live[data-state="complete"], #answer-live[data-state="failed"]').waitFor({ timeout: 110000 });
  const state = await answer.getAttribute('data-state');
  const problem = await p.getByRole('alert').allTextContents();
  assert.equal(state, 'complete', `the answer failed: ${problem.join(' ')}`);
  const final = (await answer.locator('.body').textContent()).length;
  assert.ok(final > 0, 'an answer');
  const seen = await p.evaluate(() => window.__seen);
  const partial = seen.filter((s) => s.state === 'streaming' && s.len > 0 && s.len < final);
  assert.ok(partial.length >= 1, `tokens shown before the answer completed (saw ${JSON.stringify(seen.slice(0, 20))})`);
  const agents = await p.evaluate(() => [...window.__agents]);
  assert.ok(agents.length >= 1, 'at least one agent shown at work (agent_start)');
  assert.ok(await p.locator('.agents-live li[data-state="done"]').count() >= 1, 'agents marked done (agent_complete)');
  await L.axe(p, 'chat with an answer');
  await L.shot(p, 'chat-answer-desktop-light');
  // the conversation is kept: after a reload the question is in the history
  await p.reload();
  await p.locator('.messages .msg.user').filter({ hasText: 'What are the main risks' }).waitFor();
  await L.checkClean(p);
  await p.context().close();
});

test('phase form help streams a suggestion beside the field, which can be inserted', { timeout: 90000 }, async () => {
  const u = L.newUser('Help User');
  const p = await L.newPage(browser, { viewport: L.PHONE });
  p.setDefaultTimeout(60000);
  await L.signIn(p, u);
  await requireRoute(p, '/api/phase-form-help/stream');
  const prod = await L.apiCreateProduct(p, 'Help Product', 'Meal planning for busy families');
  await p.goto(`/products/${prod.id}/phases/00000000-0000-0000-0001-000000000001`);
  const ta = p.getByLabel('Problem statement', { exact: true });
  await ta.waitFor();
  await p.getByRole('button', { name: 'Help with AI' }).first().click();
  await p.getByRole('button', { name: 'Use this text' }).click();
  assert.ok((await ta.inputValue()).length > 0, 'the suggestion is in the field');
  await L.shot(p, 'form-help-phone-light');
  await L.checkClean(p);
  await p.context().close();
});
