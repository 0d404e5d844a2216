// theme.js - light, dark or the system's preference (the default). The choice is kept in
// localStorage for the first paint and in the user's preferences on the server.

import { get } from './api.js';

const KEY = 'ideaforge.theme';
export const CHOICES = ['system', 'light', 'dark'];

export function stored() {
  try {
    const v = localStorage.getItem(KEY);
    return CHOICES.includes(v) ? v : 'system';
  } catch { return 'system'; }
}

export function apply(choice) {
  if (!CHOICES.includes(choice)) choice = 'system';
  const root = document.documentElement;
  if (choice === 'system') delete root.dataset.theme;
  else root.dataset.theme = choice;
  try { localStorage.setItem(KEY, choice); } catch { /* private mode */ }
  return choice;
}

// The theme in effect: what a chart or a test wants to know.
export function effective() {
  const c = stored();
  if (c !== 'system') return c;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

// The choice stored in the server's preferences (API.md 1.3): preferences.color_scheme,
// else `theme` when it names light or dark and was set explicitly by us.
export function fromPreferences(prefs) {
  const c = prefs && prefs.preferences && prefs.preferences.color_scheme;
  return CHOICES.includes(c) ? c : 'system';
}

// Once signed in, the server's preference decides (the stored choice painted the first frame).
export async function sync() {
  try {
    apply(fromPreferences(await get('/api/users/preferences', { quiet401: true })));
  } catch { /* keep the local choice */ }
}
