// lib.mjs - what every browser test shares: Debian's Chromium driven by playwright-core, the
// test stack's address, users made with ideaforgectl, screenshots, the axe-core check and the
// Content-Security-Policy watch.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import assert from 'node:assert/strict';

const top = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const BASE_URL = process.env.IDEAFORGE_BASE_URL || 'http://127.0.0.1:18080';
const RUN_DIR = process.env.IDEAFORGE_RUN_DIR || path.join(top, 'run/test');
const BUILD_DIR = process.env.IDEAFORGE_BUILD_DIR || path.join(top, 'build');
const CONF = process.env.IDEAFORGE_CONF || path.join(RUN_DIR, 'ideaforge.conf');
export const SHOTS = path.join(RUN_DIR, 'screenshots');
export const DEMO = { email: 'admin@ideaforge.ai', password: 'password123' };
export const PASSWORD = 'browser-test-password';

// The flags that keep Chromium off the network (the machine has none) and headless.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 360, height: 740 };

export function launch() {
  return chromium.launch({ executablePath: process.env.IDEAFORGE_CHROMIUM || '/usr/bin/chromium', args: ARGS });
}

function ctl(...args) {
  return execFileSync(path.join(BUILD_DIR, 'ideaforgectl'), ['--config', CONF, ...args],
    { encoding: 'utf8', input: args.includes('--password-stdin') ? PASSWORD + '\n' : undefined, timeout: 60000 }).trim();
}

// The demo data (admin@ideaforge.ai) and clean rate-limit buckets for 127.0.0.1, as the API
// suite leaves them however it likes.
export function prepareStack() {
  ctl('seed-demo');
  const port = process.env.IDEAFORGE_REDIS_PORT;
  if (port) {
    try {
      const keys = execFileSync('redis-cli', ['-p', port, '--scan', '--pattern', 'rl:*'], { encoding: 'utf8' }).split('\n').filter(Boolean);
      for (let i = 0; i < keys.length; i += 100) execFileSync('redis-cli', ['-p', port, 'DEL', ...keys.slice(i, i + 100)]);
    } catch { /* Redis down: the API copes, so do we */ }
  }
}

// A new user of the default tenant: {id, email, password, name}.
export function newUser(name = 'Browser Tester') {
  const email = `web-${randomBytes(6).toString('hex')}@example.test`;
  const id = ctl('user', 'add', '--email', email, '--name', name, '--tenant', 'default', '--password-stdin');
  return { id, email, password: PASSWORD, name };
}

// A page with the watches every test relies on: CSP violations and uncaught errors are
// collected (and asserted empty by check()).
export async function newPage(browser, { viewport = DESKTOP, colorScheme = 'light', acceptDownloads = false } = {}) {
  const context = await browser.newContext({ baseURL: BASE_URL, viewport, colorScheme, acceptDownloads, reducedMotion: 'reduce' });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Trusted Type/i.test(m.text())) page.problems.push('console: ' + m.text());
  });
  page.on('pageerror', (e) => page.problems.push('page error: ' + e.message));
  return page;
}

// No CSP violation, no uncaught error so far.
export async function checkClean(page) {
  const csp = await page.evaluate(() => window.__csp || []);
  assert.deepEqual([...page.problems, ...csp], [], 'CSP violations or page errors');
}

// run/test/screenshots/<name>.png, the whole page as the user sees it.
export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// axe-core in the page (evaluated through the DevTools protocol, so the page's own CSP, which
// forbids inline scripts, still applies to everything else); fails on serious or critical.
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export async function axe(page, label) {
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!has) await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').split('\n').slice(1).join(' ')) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe on ${label}: serious or critical findings`);
  return res;
}

// Signs in through the form and waits for the product list.
export async function signIn(page, user, next = '/') {
  await page.goto('/signin' + (next !== '/' ? '?next=' + encodeURIComponent(next) : ''));
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/signin'));
}

// A product made through the API with the page's session (for tests about something else).
export async function apiCreateProduct(page, name, description = '') {
  const r = await page.request.post('/api/products', { data: { name, description } });
  assert.equal(r.status(), 200, await r.text());
  return r.json();
}
