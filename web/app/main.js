// main.js - starts the application: theme, the header, the route table and the screen loop.
import { h, clear, errorBox } from './dom.js';
import { setUnauthorizedHandler } from './api.js';
import { route, match, start, go, here } from './router.js';
import { ensureUser, currentUser, signOut, forget } from './session.js';
import * as theme from './theme.js';

theme.apply(theme.stored());

// Screens load when first visited (the sign-in screen alone is needed to start).
route('/signin', () => import('./screens/signin.js'), { public: true });
route('/', () => import('./screens/dashboard.js'));
route('/portfolio', () => import('./screens/portfolio.js'));
route('/products/:id', () => import('./screens/product.js'));
route('/products/:id/phases/:phase', () => import('./screens/phase.js'));
route('/products/:id/chat', () => import('./screens/chat.js'));
route('/products/:id/knowledge', () => import('./screens/knowledge.js'));
route('/products/:id/reports', () => import('./screens/reports.js'));
route('/agents', () => import('./screens/agents.js'));
route('/settings', () => import('./screens/settings.js'));

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const userBox = document.getElementById('user');
let controller = null;

// Any 401: forget the user, go to sign-in, come back here afterwards.
setUnauthorizedHandler(() => {
  forget();
  const path = location.pathname;
  if (path !== '/signin') go('/signin?next=' + encodeURIComponent(here()), { replace: true });
});

function navLink(href, label, path) {
  const current = href === '/' ? path === '/' || path.startsWith('/products') : path.startsWith(href);
  return h('li', null, h('a', { href, 'aria-current': current ? 'page' : null }, label));
}

function renderNav(path) {
  const user = currentUser();
  clear(nav);
  clear(userBox);
  nav.hidden = !user;
  if (!user) return;
  nav.append(
    h('ul', { class: 'nav-links' },
      navLink('/', 'Products', path),
      navLink('/portfolio', 'Portfolio', path),
      navLink('/agents', 'Agents', path),
      navLink('/settings', 'Settings', path)));
  userBox.append(
    h('span', { class: 'muted who', title: user.email }, user.full_name || user.email),
    h('button', {
      type: 'button', class: 'btn ghost', id: 'signout',
      onclick: async () => {
        try { await signOut(); } finally { go('/signin', { replace: true }); }
      },
    }, 'Sign out'));
}

async function render(path, query) {
  if (controller) controller.abort();
  controller = new AbortController();
  const { signal } = controller;
  const m = match(path);
  main.setAttribute('aria-busy', 'true');
  try {
    if (!m) {
      renderNav(path);
      clear(main, h('h1', { tabindex: '-1' }, 'Page not found'),
        h('p', null, h('a', { href: '/' }, 'Go to your products')));
      return;
    }
    if (!m.route.public) {
      const user = await ensureUser();
      if (signal.aborted) return;
      if (!user) {
        go('/signin?next=' + encodeURIComponent(here()), { replace: true });
        return;
      }
    }
    renderNav(path);
    const mod = await m.route.loader();
    if (signal.aborted) return;
    clear(main);
    document.title = 'IdeaForge';
    await mod.render({ main, params: m.params, query, signal, title: (t) => { document.title = t + ' · IdeaForge'; } });
  } catch (err) {
    if (err.name === 'AbortError' || signal.aborted) return;
    clear(main, h('h1', { tabindex: '-1' }, 'Something went wrong'), errorBox(err, () => render(path, query)));
  } finally {
    if (!signal.aborted) {
      if (!performance.getEntriesByName('ideaforge:first-screen').length) performance.mark('ideaforge:first-screen');
      main.removeAttribute('aria-busy');
      // Move focus to the new screen's heading so keyboard and screen-reader users start there.
      const h1 = main.querySelector('h1');
      if (h1 && !main.contains(document.activeElement) && !document.querySelector('dialog[open]')) {
        h1.setAttribute('tabindex', '-1');
        h1.focus({ preventScroll: true });
      }
    }
  }
}

start(render);
ensureUser().then((u) => { if (u) theme.sync(); }).catch(() => {});
