// Settings: profile, appearance and notifications, password and sessions, AI provider keys,
// integrations (API.md 1.2, 1.3, 1.14).
import { h, field, busy, load, clear, announce, uid, fmtDate } from '../dom.js';
import { get, put, post, del } from '../api.js';
import { refreshUser, signOut } from '../session.js';
import { go } from '../router.js';
import * as theme from '../theme.js';

const PERSONAS = { product_manager: 'Product manager', leadership: 'Leadership', tech_lead: 'Tech lead' };
const PROVIDERS = { openai: 'OpenAI', anthropic: 'Anthropic (Claude)', google: 'Google (Gemini)', v0: 'V0' };
const VERIFY_NAME = { openai: 'openai', anthropic: 'claude', google: 'gemini', v0: 'v0' };

function section(titleText, ...kids) {
  const id = uid('sec');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, titleText), kids);
}

const ok = (out, text) => out.replaceChildren(h('p', { class: 'ok-text', role: 'status' }, text));

export async function render({ main, signal, title }) {
  title('Settings');
  const box = h('div');
  main.append(h('h1', null, 'Settings'), box);
  const data = await load(box, () => Promise.all([
    get('/api/users/profile', { signal }), get('/api/users/preferences', { signal }),
  ]));
  if (!data) return;
  const [profile, prefs] = data;
  const keysBox = h('div');
  const intBox = h('div');
  clear(box, h('div', { class: 'cards' },
    profileSection(profile), appearanceSection(prefs), passwordSection(), sessionsSection()),
  section('AI provider keys', h('p', { class: 'muted' }, 'Your own keys are used for your AI requests. They are stored encrypted and only ever shown masked.'), keysBox),
  section('Integrations', intBox));
  loadKeys(keysBox, signal);
  loadIntegrations(intBox, signal);
}

function profileSection(profile) {
  const name = h('input', { name: 'full_name', value: profile.full_name || '', autocomplete: 'name' });
  const persona = h('select', { name: 'persona' },
    Object.entries(PERSONAS).map(([v, l]) => h('option', { value: v, selected: v === profile.persona }, l)));
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Saving…' }, 'Save profile');
  const form = h('form', null, h('p', { class: 'muted' }, profile.email),
    field('Full name', name), field('Role', persona), h('div', { class: 'row' }, submit), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      await put('/api/users/profile', { full_name: name.value.trim(), persona: persona.value });
      await refreshUser();
      ok(out, 'Profile saved.');
    }, out);
  });
  return section('Profile', form);
}

function appearanceSection(prefs) {
  const current = theme.fromPreferences(prefs);
  const out = h('div', { 'aria-live': 'polite' });
  const labels = { system: 'Same as my system', light: 'Light', dark: 'Dark' };
  const radios = theme.CHOICES.map((c) => {
    const id = `theme-${c}`;
    return h('p', { class: 'choice' }, h('input', { type: 'radio', name: 'theme', id, value: c, checked: c === current }), h('label', { for: id }, labels[c]));
  });
  const notif = h('input', { type: 'checkbox', id: 'pref-notif', checked: !!prefs.notifications_enabled });
  const email = h('input', { type: 'checkbox', id: 'pref-email', checked: !!prefs.email_notifications });
  const save = async (extra) => {
    const body = { preferences: { ...(prefs.preferences || {}) }, ...extra };
    const saved = await put('/api/users/preferences', body);
    Object.assign(prefs, saved);
  };
  const fs = h('fieldset', null, h('legend', null, 'Colour scheme'), radios);
  fs.addEventListener('change', async (e) => {
    const choice = theme.apply(e.target.value);
    const p = { ...(prefs.preferences || {}), color_scheme: choice };
    try {
      const extra = { preferences: p };
      if (choice !== 'system') extra.theme = choice;
      await save(extra);
      ok(out, `Colour scheme: ${labels[choice]}. Saved.`);
    } catch (err) {
      out.replaceChildren(h('p', { class: 'error', role: 'alert' }, err.message));
    }
  });
  const nfs = h('fieldset', null, h('legend', null, 'Notifications'),
    h('p', { class: 'choice' }, notif, h('label', { for: 'pref-notif' }, 'Notifications in the app')),
    h('p', { class: 'choice' }, email, h('label', { for: 'pref-email' }, 'Email notifications')));
  nfs.addEventListener('change', async () => {
    try {
      await save({ notifications_enabled: notif.checked, email_notifications: email.checked });
      ok(out, 'Notification settings saved.');
    } catch (err) {
      out.replaceChildren(h('p', { class: 'error', role: 'alert' }, err.message));
    }
  });
  return section('Appearance and notifications', fs, nfs, out);
}

function passwordSection() {
  const cur = h('input', { type: 'password', name: 'current-password', autocomplete: 'current-password', required: true });
  const neu = h('input', { type: 'password', name: 'new-password', autocomplete: 'new-password', required: true, minlength: '8' });
  const out = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Changing…' }, 'Change password');
  const form = h('form', null, field('Current password', cur), field('New password', neu, 'At least 8 characters. Your other sessions will be signed out.'),
    h('div', { class: 'row' }, submit), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      const r = await put('/api/auth/password', { current_password: cur.value, new_password: neu.value });
      cur.value = ''; neu.value = '';
      ok(out, `Password changed. ${r && r.sessions_revoked ? r.sessions_revoked + ' other session(s) signed out.' : ''}`);
    }, out);
  });
  return section('Password', form);
}

function sessionsSection() {
  const out = h('div', { 'aria-live': 'polite' });
  const b = h('button', { type: 'button', class: 'btn danger', 'data-busy': 'Signing out…' }, 'Sign out everywhere');
  b.addEventListener('click', () => busy(b, async () => {
    await signOut(true);
    go('/signin', { replace: true });
  }, out));
  return section('Sessions', h('p', null, 'Sign out of IdeaForge on every device, this one included.'), h('div', { class: 'row' }, b), out);
}

async function loadKeys(box, signal) {
  const data = await load(box, () => get('/api/api-keys', { signal }));
  if (!data) return;
  const keys = (data.keys || []).filter((k) => PROVIDERS[k.provider]);
  clear(box, h('ul', { class: 'list' }, keys.map((k) => keyRow(k, box, signal))));
}

function keyRow(k, box, signal) {
  const name = PROVIDERS[k.provider];
  const input = h('input', { type: 'password', name: `key-${k.provider}`, autocomplete: 'off', placeholder: k.is_configured ? 'Enter a new key to replace it' : 'Paste your API key' });
  const out = h('div', { 'aria-live': 'polite' });
  const save = h('button', { type: 'button', class: 'btn small primary', 'data-busy': 'Saving…' }, 'Save');
  const verify = h('button', { type: 'button', class: 'btn small', 'data-busy': 'Verifying…' }, 'Verify');
  const need = () => { if (!input.value.trim()) { out.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Enter the ${name} key first.`)); input.focus(); return false; } return true; };
  save.addEventListener('click', () => need() && busy(save, async () => {
    await post('/api/api-keys', { provider: k.provider, api_key: input.value.trim() });
    announce(`${name} key saved`);
    loadKeys(box, signal);
  }, out));
  verify.addEventListener('click', () => need() && busy(verify, async () => {
    try {
      const r = await post('/api/providers/verify', { provider: VERIFY_NAME[k.provider], api_key: input.value.trim() });
      out.replaceChildren(h('p', { class: r.valid ? 'ok-text' : 'error', role: 'status' }, r.message || (r.valid ? 'The key works.' : 'The key was refused.')));
    } catch (err) {
      if (err.status === 404) throw new Error('Key verification is not available on this server yet (the route answered 404).');
      throw err;
    }
  }, out));
  const actions = [save, verify];
  if (k.is_configured) {
    const rm = h('button', { type: 'button', class: 'btn small', 'data-busy': 'Removing…', 'aria-label': `Remove the ${name} key` }, 'Remove');
    rm.addEventListener('click', () => busy(rm, async () => { await del(`/api/api-keys/${k.provider}`); announce(`${name} key removed`); loadKeys(box, signal); }, out));
    actions.push(rm);
  }
  return h('li', null,
    h('p', { class: 'row spread' }, h('strong', null, name),
      k.is_configured ? h('span', null, h('code', null, k.masked_key || 'configured'), ' ', h('span', { class: 'muted' }, fmtDate(k.updated_at))) : h('span', { class: 'muted' }, 'Not set')),
    field(`${name} API key`, input), h('div', { class: 'row' }, actions), out);
}

async function loadIntegrations(box, signal) {
  const data = await load(box, () => get('/api/integrations/status', { signal }));
  if (!data) return;
  const st = data.integrations || {};
  const form = (provider, label, inputs) => {
    const out = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'btn small primary', 'data-busy': 'Saving…' }, 'Save');
    const f = h('form', null, h('h3', null, label, ' ',
      h('span', { class: `badge ${st[provider]?.configured ? 'ok' : ''}` }, st[provider]?.configured ? 'Configured' : 'Not configured')),
    Object.entries(inputs).map(([k, [l, el]]) => field(l, el)), h('div', { class: 'row' }, submit), out);
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      const config = {};
      for (const [k, [, el]] of Object.entries(inputs)) config[k] = el.value.trim();
      busy(submit, async () => {
        const r = await post('/api/integrations/configure', { provider, config });
        ok(out, r.message || 'Saved.');
      }, out);
    });
    return f;
  };
  clear(box, h('div', { class: 'cards' },
    form('github', 'GitHub', { pat: ['Personal access token', h('input', { type: 'password', autocomplete: 'off' })] }),
    form('atlassian', 'Atlassian (Confluence, Jira)', {
      url: ['Site URL', h('input', { type: 'url', placeholder: 'https://example.atlassian.net' })],
      email: ['Email', h('input', { type: 'email', autocomplete: 'off' })],
      api_token: ['API token', h('input', { type: 'password', autocomplete: 'off' })],
    })));
}
