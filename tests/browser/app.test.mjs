// The application in Debian's headless Chromium against the test stack: each test is what a
// user does, ends with a screenshot under run/test/screenshots/, and checks that the page broke
// no Content-Security-Policy rule. Tests create their own users (ideaforgectl user add).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as L from './lib.mjs';

let browser;
before(async () => {
  L.prepareStack();
  browser = await L.launch();
});
after(async () => { await browser?.close(); });

const T = { timeout: 60000 };

async function page(opts) {
  const p = await L.newPage(browser, opts);
  p.setDefaultTimeout(15000);
  return p;
}

test('sign in: a protected page sends you to sign-in, a wrong password says why, then you land where you were', T, async () => {
  const p = await page();
  await p.goto('/portfolio');
  await p.waitForURL(/\/signin\?next=%2Fportfolio$/);
  await p.getByRole('heading', { name: 'Sign in to IdeaForge' }).waitFor();
  await L.axe(p, 'sign-in');
  await L.shot(p, 'signin-desktop-light');
  await p.getByLabel('Email').fill(L.DEMO.email);
  await p.getByLabel('Password').fill('not-the-password');
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('alert').filter({ hasText: 'Invalid email or password' }).waitFor();
  await p.getByLabel('Password').fill(L.DEMO.password);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.waitForURL(/\/portfolio$/);
  await p.getByRole('heading', { name: 'Portfolio', level: 1 }).waitFor();
  await p.locator('svg.chart').waitFor();
  await L.shot(p, 'portfolio-desktop-light');
  await L.checkClean(p);
  await p.context().close();
});

test('the first screen is interactive within a second', T, async () => {
  const p = await page();
  await p.goto('/signin');
  // the mark is set once the screen has rendered and has its focus (web/app/main.js)
  await p.waitForFunction(() => performance.getEntriesByName('ideaforge:first-screen').length);
  const ms = await p.evaluate(() => performance.getEntriesByName('ideaforge:first-screen')[0].startTime);
  const bytes = await p.evaluate(() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
    .reduce((n, e) => n + (e.transferSize || 0), 0));
  console.log(`first screen (sign-in) interactive after ${Math.round(ms)} ms, ${(bytes / 1024).toFixed(1)} KiB transferred`);
  assert.ok(ms < 1000, `first screen after ${ms} ms`);
  assert.equal(await p.evaluate(() => document.activeElement.name), 'email', 'the email field has the focus');
  await L.checkClean(p);
  await p.context().close();
});

test('create a product (on a 360 px phone)', T, async () => {
  const u = L.newUser('Phone Owner');
  const p = await page({ viewport: L.PHONE });
  await L.signIn(p, u);
  await p.getByRole('heading', { name: 'My products (0)' }).waitFor();
  await p.getByLabel('Product name').fill('Pocket Planner');
  await p.getByLabel('Description').fill('Plans a week of meals from what is in the fridge.');
  await p.getByRole('button', { name: 'Create product' }).click();
  await p.waitForURL(/\/products\/[0-9a-f-]{36}$/);
  await p.getByRole('heading', { name: 'Pocket Planner', level: 1 }).waitFor();
  await p.getByText('0 of 6 phases completed').waitFor();
  await L.shot(p, 'product-created-phone-light');
  await p.getByRole('link', { name: 'Products', exact: true }).first().click();
  await p.getByRole('heading', { name: 'My products (1)' }).waitFor();
  await L.shot(p, 'dashboard-phone-light');
  // nothing wider than the phone
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await L.checkClean(p);
  await p.context().close();
});

test('fill and save a phase form; it is there after a reload and counts as progress', T, async () => {
  const u = L.newUser('Phase Author');
  const p = await page();
  await L.signIn(p, u);
  const prod = await L.apiCreateProduct(p, 'Phase Product', 'For the phase form test');
  await p.goto(`/products/${prod.id}`);
  await p.getByRole('link', { name: /1\. Ideation/ }).click();
  await p.getByRole('heading', { name: '1. Ideation' }).waitFor();
  await p.getByLabel('Problem statement', { exact: true }).fill('Teams lose ideas between meetings.');
  await p.getByLabel('Target audience', { exact: true }).fill('Product teams of 5 to 50 people.');
  await p.getByLabel('Value proposition', { exact: true }).fill('Every idea captured and scored in one place.');
  await p.getByRole('button', { name: 'Save draft' }).click();
  await p.getByText('Draft saved.').waitFor();
  await p.getByRole('button', { name: 'Save and mark complete' }).click();
  await p.getByText('Saved and marked complete.').waitFor();
  await L.axe(p, 'phase form');
  await L.shot(p, 'phase-form-saved-desktop-light');
  await p.reload();
  await assert.equal(await p.getByLabel('Target audience', { exact: true }).inputValue(), 'Product teams of 5 to 50 people.');
  await p.getByRole('link', { name: 'Phases', exact: true }).click();
  await p.getByText('1 of 6 phases completed').waitFor();
  const r = await p.request.get(`/api/db/phase-submissions?product_id=${prod.id}`);
  const subs = (await r.json()).submissions;
  assert.equal(subs.length, 1);
  assert.equal(subs[0].status, 'completed');
  assert.equal(subs[0].form_data.problem_statement, 'Teams lose ideas between meetings.');
  await L.shot(p, 'phases-progress-desktop-light');
  await L.checkClean(p);
  await p.context().close();
});

test('share a product with another user, who then sees it', T, async () => {
  const owner = L.newUser('Sharing Owner');
  const friend = L.newUser('Zed Friend');
  const p = await page();
  await L.signIn(p, owner);
  const prod = await L.apiCreateProduct(p, 'Shared Roadmap', 'Seen by a friend');
  await p.goto(`/products/${prod.id}`);
  await p.getByRole('button', { name: 'Share' }).click();
  const dlg = p.getByRole('dialog', { name: /Share/ });
  await dlg.getByText('Only the owner has access.').waitFor();
  await dlg.getByLabel('Find a person').fill('zed friend');
  await dlg.getByLabel('Person', { exact: true }).selectOption({ label: `Zed Friend (${friend.email})` });
  await dlg.getByLabel('Permission').selectOption('edit');
  await dlg.getByRole('button', { name: 'Share', exact: true }).click();
  await dlg.getByRole('button', { name: 'Revoke access of Zed Friend' }).waitFor();
  await L.axe(p, 'share dialog');
  await L.shot(p, 'share-dialog-desktop-light');
  await dlg.getByRole('button', { name: 'Close' }).click();
  await p.getByRole('button', { name: 'Sign out' }).click();
  await p.waitForURL(/\/signin/);

  await L.signIn(p, friend);
  await p.getByRole('heading', { name: 'Shared with me (1)' }).waitFor();
  await p.getByRole('link', { name: 'Shared Roadmap' }).first().click();
  await p.getByRole('heading', { name: 'Shared Roadmap', level: 1 }).waitFor();
  await p.getByText('shared: edit').waitFor();
  await L.shot(p, 'shared-product-seen-by-friend');
  await L.checkClean(p);
  await p.context().close();
});

test('upload a document and search the knowledge base with highlighted results', T, async () => {
  const u = L.newUser('Knowledge Keeper');
  const p = await page();
  await L.signIn(p, u);
  const prod = await L.apiCreateProduct(p, 'Knowledge Product');
  await p.goto(`/products/${prod.id}/knowledge`);
  await p.getByRole('heading', { name: 'Upload a document' }).waitFor();
  await p.getByLabel('Title').fill('Pricing notes');
  await p.getByLabel('Content').fill('Competitors charge per seat; we charge per product.');
  await p.getByRole('button', { name: 'Add article' }).click();
  await p.getByText('Article added.').waitFor();
  await p.getByLabel('Document', { exact: true }).setInputFiles({
    name: 'interviews.md', mimeType: 'text/markdown',
    buffer: Buffer.from('# Customer interviews\n\nEvery team asked for a zebra-striped timeline view.\n'),
  });
  await p.getByRole('button', { name: 'Upload' }).click();
  await p.getByText('Uploaded interviews.md.').waitFor();
  await p.getByText('2 articles').waitFor();
  await p.getByLabel('Search the knowledge base').fill('zebra');
  await p.getByRole('button', { name: 'Search', exact: true }).click();
  await p.getByText('1 result for “zebra”').waitFor();
  const marks = await p.locator('#kb-results mark').allTextContents();
  assert.deepEqual(marks, ['zebra']);
  await L.axe(p, 'knowledge base');
  await L.shot(p, 'knowledge-search-desktop-light');
  await L.checkClean(p);
  await p.context().close();
});

test('progress report, PRD review and PRD export as Markdown and HTML', T, async () => {
  const u = L.newUser('Report Reader');
  const p = await page({ acceptDownloads: true });
  await L.signIn(p, u);
  const prod = await L.apiCreateProduct(p, 'Export Product', 'A product to export');
  await p.goto(`/products/${prod.id}/reports`);
  await p.getByRole('button', { name: 'Generate report' }).click();
  await p.locator('#report').getByText('Overall: 0%').waitFor();
  await p.getByRole('button', { name: 'Review the PRD' }).click();
  await p.locator('#review').getByText('Incomplete').waitFor();

  // the template (the agent's switch off): the product's own heading
  await p.getByLabel('Format').selectOption('markdown');
  await p.getByLabel('Written by the export agent (off: the template)').uncheck();
  let [dl] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: 'Download PRD' }).click()]);
  assert.match(dl.suggestedFilename(), /^PRD_Export_Product_\d{8}\.md$/);
  const md = readFileSync(await dl.path(), 'utf8');
  assert.match(md, /^# .*Export Product/m);
  await p.getByText(/Downloaded PRD_Export_Product_\d{8}\.md/).waitFor();

  // written by the export agent (the test stack's fake provider): its words in our HTML page
  await p.getByLabel('Format').selectOption('html');
  await p.getByLabel('Written by the export agent (off: the template)').check();
  [dl] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: 'Download PRD' }).click()]);
  assert.match(dl.suggestedFilename(), /^PRD_Export_Product_\d{8}\.html$/);
  const html = readFileSync(await dl.path(), 'utf8');
  assert.match(html, /<html[\s>]/i);
  assert.match(html, /Fake answer from/);
  await L.axe(p, 'reports');
  await L.shot(p, 'reports-export-desktop-light');
  await L.checkClean(p);
  await p.context().close();
});

test('switch to dark mode: applied at once, kept on the server, in effect after a reload', T, async () => {
  const u = L.newUser('Night Owl');
  const p = await page();
  await L.signIn(p, u);
  await L.apiCreateProduct(p, 'Dark Product', 'Seen in the dark');
  await p.goto('/settings');
  await p.getByRole('radio', { name: 'Same as my system' }).waitFor();
  assert.ok(await p.getByRole('radio', { name: 'Same as my system' }).isChecked(), 'the system preference is the default');
  await p.getByRole('radio', { name: 'Dark' }).check();
  await p.getByText('Colour scheme: Dark. Saved.').waitFor();
  assert.equal(await p.evaluate(() => document.documentElement.dataset.theme), 'dark');
  const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(15, 20, 25)');
  await L.axe(p, 'settings (dark)');
  await L.shot(p, 'settings-desktop-dark');
  const prefs = await (await p.request.get('/api/users/preferences')).json();
  assert.equal(prefs.preferences.color_scheme, 'dark');
  // a new browser profile (nothing stored locally) gets it from the server
  await p.evaluate(() => localStorage.clear());
  await p.goto('/');
  await p.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
  await p.getByRole('heading', { name: 'My products (1)' }).waitFor();
  await L.axe(p, 'dashboard (dark)');
  await L.shot(p, 'dashboard-desktop-dark');
  await p.setViewportSize(L.PHONE);
  await L.shot(p, 'dashboard-phone-dark');
  await L.checkClean(p);
  await p.context().close();
});

test('the system preference decides until the user chooses', T, async () => {
  const u = L.newUser('System Dark');
  const p = await page({ colorScheme: 'dark' });
  await L.signIn(p, u);
  await p.getByRole('heading', { name: 'My products (0)' }).waitFor();
  assert.equal(await p.evaluate(() => document.documentElement.dataset.theme), undefined);
  assert.equal(await p.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(15, 20, 25)');
  await L.checkClean(p);
  await p.context().close();
});

test('sign out: back to sign-in, the session is gone, a protected page asks to sign in again', T, async () => {
  const u = L.newUser('Leaving User');
  const p = await page();
  await L.signIn(p, u);
  await p.getByRole('button', { name: 'Sign out' }).click();
  await p.waitForURL(/\/signin$/);
  await p.getByRole('heading', { name: 'Sign in to IdeaForge' }).waitFor();
  assert.equal((await p.request.get('/api/auth/me')).status(), 401);
  await p.goto('/settings');
  await p.waitForURL(/\/signin\?next=%2Fsettings$/);
  await L.shot(p, 'signed-out');
  await L.checkClean(p);
  await p.context().close();
});

test('keyboard only: skip link, sign in with Enter, visible focus on links and buttons', T, async () => {
  const u = L.newUser('Keyboard User');
  const p = await page();
  await p.goto('/signin');
  await p.getByLabel('Email').waitFor();
  await p.keyboard.press('Shift+Tab');
  await p.keyboard.press('Shift+Tab');
  await p.getByLabel('Email').focus();
  await p.keyboard.type(u.email);
  await p.keyboard.press('Tab');
  await p.keyboard.type(u.password);
  await p.keyboard.press('Enter');
  await p.getByRole('heading', { name: 'Products', level: 1 }).waitFor();
  // focus starts on the screen's heading; going back reaches the navigation, then the skip
  // link, which shows when focused
  await p.waitForFunction(() => document.activeElement.tagName === 'H1');
  let skip = null;
  for (let i = 0; i < 12 && !skip; i++) {
    await p.keyboard.press('Shift+Tab');
    skip = await p.evaluate(() => (document.activeElement.classList.contains('skip')
      ? { top: document.activeElement.getBoundingClientRect().top } : null));
  }
  assert.ok(skip, 'Shift+Tab reaches the skip link');
  assert.ok(skip.top >= 0, 'the skip link shows when focused');
  await L.shot(p, 'keyboard-skip-link');
  await p.keyboard.press('Enter');
  assert.equal(await p.evaluate(() => document.activeElement.id), 'main');
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement.name), 'name', 'Tab after the skip link reaches the first field of the screen');
  // back into the navigation: a link with a visible focus ring
  let focus = null;
  for (let i = 0; i < 8 && !(focus && focus.tag === 'A'); i++) {
    await p.keyboard.press('Shift+Tab');
    focus = await p.evaluate(() => {
      const s = getComputedStyle(document.activeElement);
      return { tag: document.activeElement.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth) };
    });
  }
  assert.equal(focus.tag, 'A');
  assert.notEqual(focus.outline, 'none', 'focus is visible');
  assert.ok(focus.width >= 2, 'a focus ring of at least 2px');
  await L.shot(p, 'keyboard-focus');
  await L.checkClean(p);
  await p.context().close();
});

test('the chat renders the stream of API.md 5.7: agents at work, tokens, the final answer (a stream replayed by the browser)', T, async () => {
  const u = L.newUser('Chat Viewer');
  const p = await page({ viewport: L.PHONE });
  await L.signIn(p, u);
  const prod = await L.apiCreateProduct(p, 'Replay Product');
  const ev = (id, type, data) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  const words = 'Start with the riskiest assumption: that teams will write ideas down at all. '.split(/(?<= )/);
  let body = ev(1, 'progress', { progress: 0.1, message: 'Starting', job_id: 'job-replay' })
    + ev(2, 'agent_start', { agent: 'rag' }) + ev(3, 'agent_complete', { agent: 'rag', response: '' })
    + ev(4, 'agent_start', { agent: 'research' });
  words.forEach((w, i) => { body += ev(5 + i, 'agent_chunk', { agent: 'research', chunk: w }); });
  body += ev(99, 'agent_complete', { agent: 'research' }) + ev(100, 'complete', { response: words.join('').trim(), metadata: { primary_agent: 'research' } });
  let sent = null;
  await p.route('**/api/streaming/multi-agent/stream', async (route) => {
    sent = route.request().postDataJSON();
    await route.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream', 'X-Job-Id': 'job-replay' }, body });
  });
  await p.goto(`/products/${prod.id}/chat`);
  await p.getByLabel('Your message').fill('Where do we start?');
  await p.getByLabel('Your message').press('Control+Enter');
  await p.locator('#answer-live[data-state="complete"]').waitFor();
  assert.equal(await p.locator('#answer-live .body').textContent(), words.join('').trim());
  assert.equal(await p.locator('#answer-live .who').textContent(), 'Research agent');
  assert.equal(await p.locator('#answer-live').getAttribute('data-chunks'), String(words.length));
  assert.deepEqual(await p.locator('.agents-live li').evaluateAll((els) => els.map((e) => `${e.dataset.agent}:${e.dataset.state}`)),
    ['rag:done', 'research:done']);
  assert.equal(sent.query, 'Where do we start?');
  assert.equal(sent.product_id, prod.id);
  await p.getByText('Answer complete').waitFor();
  await L.axe(p, 'chat with an answer');
  await L.shot(p, 'chat-replayed-phone-light');
  await L.checkClean(p);
  await p.context().close();
});

test('accessibility: every screen and dialog, light and dark, desktop and phone, has no serious axe finding', { timeout: 150000 }, async () => {
  const u = L.newUser('Axe Checker');
  const other = L.newUser('Axe Other');
  for (const [scheme, viewport] of [['light', L.DESKTOP], ['dark', L.PHONE]]) {
    const p = await page({ colorScheme: scheme, viewport });
    await L.signIn(p, u);
    const prod = await L.apiCreateProduct(p, `Axe ${scheme}`, 'Checked by axe-core');
    await p.request.post(`/api/products/${prod.id}/share`, { data: { shared_with_user_id: other.id, permission: 'view' } });
    await p.request.post('/api/db/knowledge-articles', { data: { product_id: prod.id, title: 'Axe notes', content: 'Contrast matters.' } });
    const screens = [
      ['/', 'Products'], ['/portfolio', 'Portfolio'], ['/agents', 'Agent dashboard'], ['/settings', 'Settings'],
      [`/products/${prod.id}`, `Axe ${scheme}`], [`/products/${prod.id}/phases/00000000-0000-0000-0001-000000000004`, `Axe ${scheme}`],
      [`/products/${prod.id}/chat`, `Axe ${scheme}`], [`/products/${prod.id}/knowledge`, `Axe ${scheme}`],
      [`/products/${prod.id}/reports`, `Axe ${scheme}`], ['/no-such-page', 'Page not found'],
    ];
    for (const [path, h1] of screens) {
      await p.goto(path);
      await p.getByRole('heading', { name: h1, level: 1 }).waitFor();
      await p.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
      await L.axe(p, `${path} (${scheme})`);
      if (scheme === 'dark') await L.shot(p, `phone-dark${path.replace(/\/products\/[^/]+/, '/product').replace(/\/phases\/.*/, '/phase').replace(/\W+/g, '-')}`);
    }
    await p.goto(`/products/${prod.id}`);
    await p.getByRole('button', { name: 'Edit' }).click();
    await p.getByRole('dialog', { name: 'Edit product' }).waitFor();
    await L.axe(p, `edit dialog (${scheme})`);
    await p.keyboard.press('Escape');
    await p.getByRole('button', { name: 'Share' }).click();
    await p.getByRole('dialog', { name: /Share/ }).getByRole('button', { name: 'Revoke access of Axe Other' }).waitFor();
    await L.axe(p, `share dialog (${scheme})`);
    if (scheme === 'dark') await L.shot(p, 'phone-dark-share-dialog');
    await L.checkClean(p);
    await p.context().close();
  }
  const p = await page();
  await p.goto('/signin');
  await p.getByLabel('Email').waitFor();
  await L.axe(p, 'sign-in');
  await p.context().close();
});
