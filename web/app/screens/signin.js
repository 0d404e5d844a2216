// Sign in (and register, when the server allows it: GET /api/auth/register answers 405 then).
import { h, field, errorBox, busy } from '../dom.js';
import { request, ApiError } from '../api.js';
import { signIn, ensureUser } from '../session.js';
import { go } from '../router.js';
import * as theme from '../theme.js';

// Only paths of this application, never another origin (an open redirect).
function safeNext(query) {
  const n = query.get('next') || '/';
  return n.startsWith('/') && !n.startsWith('//') && !n.startsWith('/signin') ? n : '/';
}

export async function render({ main, query, title }) {
  title('Sign in');
  const next = safeNext(query);
  if (await ensureUser()) { go(next, { replace: true }); return; }

  const status = h('div', { 'aria-live': 'polite' });
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', 'data-busy': 'Signing in…' }, 'Sign in');
  const form = h('form', { class: 'card', novalidate: true },
    field('Email', email), field('Password', password), h('div', { class: 'row' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!email.value || !password.value) {
      status.replaceChildren(errorBox(new Error('Enter your email and password.')));
      (email.value ? password : email).focus();
      return;
    }
    busy(submit, async () => {
      await signIn(email.value.trim(), password.value);
      theme.sync();
      go(next, { replace: true });
    }, status);
  });

  const wrap = h('div', { class: 'auth' },
    h('h1', null, 'Sign in to IdeaForge'),
    h('p', { class: 'muted' }, 'Take a product idea from ideation to go-to-market with specialised AI agents.'),
    status, form);
  main.append(wrap);
  email.focus();

  // Registration is offered only where the server enables it (not awaited: the form is
  // usable at once).
  request('/api/auth/register', { quiet401: true }).catch((err) => {
    if (err instanceof ApiError && err.status === 405 && wrap.isConnected) wrap.append(registerForm(next));
  });
}

function registerForm(next) {
  const status = h('div', { 'aria-live': 'polite' });
  const name = h('input', { name: 'full_name', autocomplete: 'name', required: true });
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true });
  const pw = h('input', { type: 'password', name: 'new-password', autocomplete: 'new-password', required: true, minlength: '8' });
  const submit = h('button', { type: 'submit', class: 'btn', 'data-busy': 'Creating…' }, 'Create account');
  const form = h('form', { class: 'card' },
    field('Full name', name), field('Email', email), field('Password', pw, 'At least 8 characters.'),
    h('div', { class: 'row' }, submit), status);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      await request('/api/auth/register', {
        method: 'POST', json: { email: email.value.trim(), password: pw.value, full_name: name.value.trim() }, quiet401: true,
      });
      await signIn(email.value.trim(), pw.value);
      go(next, { replace: true });
    }, status);
  });
  return h('section', { 'aria-labelledby': 'reg-h' }, h('h2', { id: 'reg-h' }, 'New here? Create an account'), form);
}
