// session.js - who is signed in (from GET /api/auth/me), shared by the screens.
import { post, request } from './api.js';

let user = null;

export const currentUser = () => user;

// The signed-in user, asking the server once; null when there is no valid session.
export async function ensureUser() {
  if (user) return user;
  try {
    user = await request('/api/auth/me', { quiet401: true });
  } catch (err) {
    if (err.status === 401) return null;
    throw err;
  }
  return user;
}

export async function signIn(email, password) {
  await request('/api/auth/login', { method: 'POST', json: { email, password }, quiet401: true });
  user = null;
  return ensureUser();
}

export async function signOut(everywhere = false) {
  try {
    await post(everywhere ? '/api/auth/logout-all' : '/api/auth/logout', {}, { quiet401: true });
  } finally {
    user = null;
  }
}

export function forget() { user = null; }

export async function refreshUser() {
  user = null;
  return ensureUser();
}

