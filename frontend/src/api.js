// The REST API under /api/v1/: bearer tokens kept in memory only, a refresh token in an HttpOnly cookie the page
// cannot read (auth/refresh with the CSRF token repeated in a header), errors turned into sentences.

const BASE = '/api/v1/';
let access = null;
let refreshTimer = null;
let refreshing = null;
const listeners = new Set();

export function onAuthChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function setAccess(token, expiresIn) {
  access = token;
  clearTimeout(refreshTimer);
  if (token && expiresIn) {
    // Refresh a minute before the access token expires, so a request rarely meets a 401.
    refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(5, expiresIn - 60) * 1000);
  }
  listeners.forEach((fn) => fn(Boolean(token)));
}
export const signedIn = () => Boolean(access);

export class ApiError extends Error {
  constructor(message, status, code, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)layra_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

async function errorFrom(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const err = body && body.error;
  let message = (err && err.message) || (body && body.detail) || '';
  const details = err && err.details;
  if (details && typeof details === 'object') {
    const fields = Object.entries(details)
      .filter(([, v]) => Array.isArray(v))
      .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v.join(' ')}`);
    if (fields.length) message = `${message ? message + ' ' : ''}${fields.join('; ')}`;
  }
  if (!message) {
    message = {
      401: 'Your session has ended. Please sign in again.',
      403: 'You are not allowed to do this.',
      404: 'Not found: it may have been deleted.',
      413: 'The file is too large.',
      429: 'Too many requests: wait a moment and try again.',
    }[response.status] || `The server answered ${response.status} ${response.statusText}.`;
  }
  return new ApiError(message, response.status, err && err.code, details);
}

async function doRefresh() {
  const response = await fetch(BASE + 'auth/refresh', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: '{}',
  });
  if (!response.ok) { setAccess(null); throw await errorFrom(response); }
  const pair = await response.json();
  setAccess(pair.access, pair.expires_in);
  return pair.access;
}

// One refresh at a time, across tabs too: spending the same refresh token twice revokes the whole session.
export function refresh() {
  if (!refreshing) {
    const run = () => doRefresh();
    refreshing = (navigator.locks ? navigator.locks.request('layra-refresh', run) : run())
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function restoreSession() {
  if (!csrfToken()) return false;
  try { await refresh(); return true; } catch { return false; }
}

export async function login(username, password) {
  const response = await fetch(BASE + 'auth/login', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password, cookie: true }),
  });
  if (!response.ok) throw await errorFrom(response);
  const pair = await response.json();
  setAccess(pair.access, pair.expires_in);
}

export async function register(username, password, email) {
  const response = await fetch(BASE + 'auth/register', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password, email }),
  });
  if (!response.ok) throw await errorFrom(response);
  await login(username, password);
}

// Deleting the account ends the session at once (the server revokes every token and clears the cookie).
export async function accountDelete(password) {
  await request('auth/me/', { method: 'DELETE', body: { password } });
  setAccess(null);
}

export async function logout() {
  try { await request('auth/logout', { method: 'POST' }); } catch { /* signed out either way */ }
  setAccess(null);
}

// fetch with the bearer token; a 401 refreshes once and tries again.
export async function raw(path, options = {}, retried = false) {
  const headers = { ...(options.headers || {}) };
  if (access) headers.Authorization = `Bearer ${access}`;
  let body = options.body;
  if (body !== undefined && !(body instanceof FormData) && typeof body !== 'string') {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  const response = await fetch(BASE + path, { ...options, headers, body, credentials: 'same-origin' });
  if (response.status === 401 && !retried && csrfToken()) {
    try { await refresh(); } catch { throw new ApiError('Your session has ended. Please sign in again.', 401); }
    return raw(path, options, true);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function request(path, options = {}) {
  const response = await raw(path, options);
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  return type.includes('json') ? response.json() : response.text();
}

export const get = (path) => request(path);
export const post = (path, body) => request(path, { method: 'POST', body: body ?? {} });
export const patch = (path, body) => request(path, { method: 'PATCH', body });
export const put = (path, body) => request(path, { method: 'PUT', body });
export const del = (path) => request(path, { method: 'DELETE' });

// Lists come as a bare array or as a page ({count, next, previous, results}); read every page.
export async function list(path) {
  const first = await get(path);
  if (Array.isArray(first)) return first;
  const items = [...(first.results || [])];
  let next = first.next;
  while (next) {
    const url = new URL(next, location.origin);
    const page = await get(url.pathname.replace(BASE, '') + url.search);
    items.push(...(page.results || []));
    next = page.next;
  }
  return items;
}

// Server-sent events from a fetch (EventSource cannot send the Authorization header, nor POST a body).
export async function stream(path, options, onEvent, signal) {
  const response = await raw(path, { ...options, signal, headers: { Accept: 'text/event-stream' } });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join('\n')));
    }
  }
}

// Upload with progress (fetch has no upload progress): XMLHttpRequest, same bearer token and retry on 401.
export function upload(path, files, onProgress, retried = false) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append('files', file);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', BASE + path);
    if (access) xhr.setRequestHeader('Authorization', `Bearer ${access}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new ApiError('The upload failed: the server could not be reached.', 0));
    xhr.onload = async () => {
      if (xhr.status === 401 && !retried) {
        try { await refresh(); resolve(await upload(path, files, onProgress, true)); } catch (e) { reject(e); }
        return;
      }
      const response = new Response(xhr.responseText || null, {
        status: xhr.status, headers: { 'Content-Type': xhr.getResponseHeader('Content-Type') || '' },
      });
      if (xhr.status >= 400) reject(await errorFrom(response));
      else resolve(JSON.parse(xhr.responseText));
    };
    xhr.send(form);
  });
}
