import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';

import { accountDelete, del, get, list, post } from '../api.js';
import { Confirm, ErrorText, formatDate } from '../ui.js';

function PasswordForm() {
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = new FormData(form);
    setError(null); setDone(false);
    if (f.get('new_password') !== f.get('repeat')) { setError(new Error('The two new passwords differ.')); return; }
    try {
      await post('auth/password', { current_password: f.get('current_password'), new_password: f.get('new_password') });
      form.reset(); setDone(true);
    } catch (e) { setError(e); }
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="pw-title">
    <h2 id="pw-title">Change password</h2>
    <label>Current password<input name="current_password" type="password" autocomplete="current-password" required /></label>
    <label>New password<input name="new_password" type="password" autocomplete="new-password" required /></label>
    <label>Repeat the new password<input name="repeat" type="password" autocomplete="new-password" required /></label>
    <${ErrorText} error=${error} />
    ${done ? html`<p class="ok" role="status">Password changed. Your other sessions were signed out.</p>` : null}
    <button type="submit" class="primary">Change password</button>
  </form>`;
}

function ApiKeys() {
  const [keys, setKeys] = useState(null);
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const [copied, setCopied] = useState(false);
  const load = () => list('auth/api-keys/').then(setKeys, setError);
  useEffect(() => { load(); }, []);
  const create = async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = new FormData(form);
    try {
      setCopied(false);
      setCreated(await post('auth/api-keys/', { name: f.get('name'), expires_in_days: f.get('days') ? Number(f.get('days')) : null }));
      form.reset(); load();
    } catch (e) { setError(e); }
  };
  const revoke = async () => {
    const k = revoking;
    setRevoking(null);
    try { await del(`auth/api-keys/${k.id}/`); setCreated((c) => (c && c.id === k.id ? null : c)); load(); }
    catch (e) { setError(e); }
  };
  return html`<section class="card" aria-labelledby="keys-title">
    <h2 id="keys-title">API keys</h2>
    <p class="hint">For scripts and other programs. A key is shown once, when it is created.</p>
    <form class="row" onSubmit=${create}>
      <label class="grow">Key name<input name="name" required maxlength="100" /></label>
      <label>Expires after (days)<input name="days" type="number" min="1" max="3650" placeholder="never" /></label>
      <button type="submit" class="primary">Create key</button>
    </form>
    ${created ? html`<div class="notice" role="status"><p>Copy your new key now; it will not be shown again:</p>
      <p><code class="secret">${created.key}</code></p>
      <div class="row"><button type="button" class="small" onClick=${() => navigator.clipboard.writeText(created.key)
        .then(() => setCopied(true), () => setError(new Error('Copying failed: select the key and copy it.')))}
        >${copied ? 'Copied' : 'Copy the key'}</button>
      <button type="button" class="small" onClick=${() => { setCreated(null); setCopied(false); }}>I have saved it</button></div>
    </div>` : null}
    <${ErrorText} error=${error} />
    ${keys === null ? null : keys.length === 0 ? html`<p class="empty">No API key.</p>`
      : html`<ul class="plain">${keys.map((k) => html`<li key=${k.id}><strong>${k.name}</strong> <code>${k.masked_key}</code>
        <span class="muted"> created ${formatDate(k.created_at)}${k.last_used_at ? `, last used ${formatDate(k.last_used_at)}` : ''}</span>
        <button type="button" class="small danger" aria-label=${`Revoke ${k.name}`} onClick=${() => setRevoking(k)}>Revoke</button></li>`)}</ul>`}
    ${revoking && html`<${Confirm} title="Revoke API key" message=${`Revoke “${revoking.name}”? Programs using it stop working.`}
      action="Revoke" onConfirm=${revoke} onClose=${() => setRevoking(null)} />`}
  </section>`;
}

function DeleteAccount() {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const f = new FormData(event.currentTarget);
    if (f.get('confirm') !== 'delete') { setError(new Error('Type “delete” to confirm.')); return; }
    setBusy(true); setError(null);
    // On success the session ends and the app goes back to the sign-in page.
    try { await accountDelete(f.get('password')); } catch (e) { setError(e); setBusy(false); }
  };
  return html`<form class="card danger-zone" onSubmit=${submit} aria-labelledby="delete-title">
    <h2 id="delete-title">Delete account</h2>
    <p class="hint">Deletes your account and everything in it: knowledge bases, files, conversations, workflows,
      models and API keys. It cannot be undone.</p>
    <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>
    <label>Type “delete” to confirm<input name="confirm" autocomplete="off" required /></label>
    <${ErrorText} error=${error} />
    <button type="submit" class="danger" disabled=${busy}>Delete my account</button>
  </form>`;
}

export function AccountPage() {
  const [me, setMe] = useState(null);
  useEffect(() => { get('auth/me').then(setMe, () => {}); }, []);
  return html`<section class="page">
    <h1>Account</h1>
    ${me ? html`<p>Signed in as <strong>${me.username}</strong>${me.email ? ` (${me.email})` : ''}.</p>` : null}
    <${PasswordForm} />
    <${ApiKeys} />
    <${DeleteAccount} />
  </section>`;
}
