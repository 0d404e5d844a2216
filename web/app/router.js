// router.js - client-side routes on real paths (nginx answers any unknown path with
// index.html). Links are ordinary <a href>; clicks on same-origin links are taken over.

const routes = [];
let renderFn = null;

// route('/products/:id/chat', loader): loader() resolves to a screen module.
export function route(pattern, loader, opts = {}) {
  const keys = [];
  const re = new RegExp('^' + pattern.replace(/\/:(\w+)/g, (_, k) => { keys.push(k); return '/([^/]+)'; }) + '/?$');
  routes.push({ re, keys, loader, ...opts });
}

export function match(pathname) {
  for (const r of routes) {
    const m = r.re.exec(pathname);
    if (m) {
      const params = {};
      r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      return { route: r, params };
    }
  }
  return null;
}

export const here = () => location.pathname + location.search;

export function go(path, { replace = false } = {}) {
  if (path === here() && !replace) { render(); return; }
  history[replace ? 'replaceState' : 'pushState'](null, '', path);
  render();
}

function render() {
  if (renderFn) renderFn(location.pathname, new URLSearchParams(location.search));
}

export function start(fn) {
  renderFn = fn;
  addEventListener('popstate', render);
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
    if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
    e.preventDefault();
    go(url.pathname + url.search);
  });
  render();
}
