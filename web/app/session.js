// session.js - who is signed in (from GET /api/auth/me), shared by the screens.
import { post, request } from './api.js';

let user = null;
let signedOut = false; // the server said 401: no need to ask again until a sign-in

export const currentUser = () => user;

// The signed-in user, asking the server once; null when there is no valid session.
let pending = null;
export function ensureUser() {
  if (user) return Promise.resolve(user);
  if (signedOut) return Promise.resolve(null);
  if (!pending) {
    pending = request('/api/auth/me', { quiet401: true })
      .then((u) => { user = u; return u; })
      .catch((err) => {
        if (err.status === 401) { signedOut = true; return null; }
        throw err;
      })
      .finally(() => { pending = null; });
  }
  return pending;
}

export async function signIn(email, password) {
  await request('/api/auth/login', { method: 'POST', json: { email, password }, quiet401: true });
  user = null;
  signedOut = false;
  return ensureUser();
}

export async function signOut(everywhere = false) {
  try {
    await post(everywhere ? '/api/auth/logout-all' : '/api/auth/logout', {}, { quiet401: true });
  } finally {
    user = null;
    signedOut = true;
  }
}

// After a 401 anywhere.
export function forget() { user = null; signedOut = true; }

export async function refreshUser() {
  user = null;
  signedOut = false;
  return ensureUser();
}

