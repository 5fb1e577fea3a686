import { html } from 'htm/preact';
import { useState } from 'preact/hooks';

import { login, register } from '../api.js';
import { ErrorText } from '../ui.js';

export function AuthPage({ mode }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const isLogin = mode === 'login';

  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    setError(null);
    try {
      if (isLogin) await login(form.get('username'), form.get('password'));
      else await register(form.get('username'), form.get('password'), form.get('email') || '');
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return html`<main class="auth" id="main">
    <h1 class="brand">LAYRA</h1>
    <p class="tagline">Ask questions about your documents; every answer shows the pages it comes from.</p>
    <form class="card" onSubmit=${submit} aria-labelledby="auth-title">
      <h2 id="auth-title">${isLogin ? 'Sign in' : 'Create an account'}</h2>
      <label>Username<input name="username" autocomplete="username" required autofocus /></label>
      ${isLogin ? null : html`<label>Email (optional)<input name="email" type="email" autocomplete="email" /></label>`}
      <label>Password<input name="password" type="password" required
        autocomplete=${isLogin ? 'current-password' : 'new-password'} /></label>
      ${isLogin ? null : html`<p class="hint">Use a long password that is not a common one.</p>`}
      <${ErrorText} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>${isLogin ? 'Sign in' : 'Create account'}</button>
      <p>${isLogin
        ? html`New here? <a href="/register">Create an account</a>`
        : html`Already have an account? <a href="/login">Sign in</a>`}</p>
    </form>
  </main>`;
}
