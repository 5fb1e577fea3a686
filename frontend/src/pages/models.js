import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';

import { del, list, post, put } from '../api.js';
import { Confirm, ErrorText } from '../ui.js';

const num = (v) => (v === '' || v == null ? null : Number(v));

export function ModelsPage() {
  const [models, setModels] = useState(null);
  const [error, setError] = useState(null);
  const [tests, setTests] = useState({});
  const [deleting, setDeleting] = useState(null);

  const load = () => list('models/').then(setModels, setError);
  useEffect(() => { load(); }, []);

  const add = async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const f = new FormData(form);
    setError(null);
    try {
      await post('models/', {
        model_name: f.get('model_name'), model_url: f.get('model_url'), api_key: f.get('api_key'),
        system_prompt: f.get('system_prompt'), temperature: num(f.get('temperature')),
        max_length: num(f.get('max_length')), top_K: num(f.get('top_K')),
        select: f.get('select') === 'on' || !(models && models.length),
      });
      form.reset();
      await load();
    } catch (e) { setError(e); }
  };
  const test = async (m) => {
    setTests((t) => ({ ...t, [m.model_id]: { busy: true } }));
    try { const r = await post(`models/${m.model_id}/test`); setTests((t) => ({ ...t, [m.model_id]: r })); }
    catch (e) { setTests((t) => ({ ...t, [m.model_id]: { ok: false, error: e.message } })); }
  };
  const choose = async (m) => {
    try { await put('models/selected', { model_id: m.model_id }); await load(); } catch (e) { setError(e); }
  };
  const remove = async () => {
    const m = deleting;
    setDeleting(null);
    try { await del(`models/${m.model_id}/`); await load(); } catch (e) { setError(e); }
  };

  return html`<section class="page">
    <h1>Models</h1>
    <${ErrorText} error=${error} />
    ${models === null ? html`<p role="status">Loading…</p>`
      : models.length === 0 ? html`<p class="empty">No model yet. Add an OpenAI-compatible endpoint below (a vision
          model reads the cited page images).</p>`
      : html`<ul class="cards" aria-label="Your models">${models.map((m) => {
        const t = tests[m.model_id];
        return html`<li class="card" key=${m.model_id}>
          <p class="title">${m.model_name} ${m.is_selected ? html`<span class="badge">Default</span>` : null}</p>
          <p class="meta">${m.model_url}${m.has_api_key ? ` · key ${m.api_key}` : ' · no key'}</p>
          <div class="row">
            <button type="button" class="small" onClick=${() => test(m)} aria-label=${`Test ${m.model_name}`}>Test</button>
            ${m.is_selected ? null : html`<button type="button" class="small" onClick=${() => choose(m)}
              aria-label=${`Make ${m.model_name} the default`}>Make default</button>`}
            <button type="button" class="small danger" onClick=${() => setDeleting(m)}
              aria-label=${`Delete ${m.model_name}`}>Delete</button>
          </div>
          ${t ? html`<p role="status" class=${t.busy ? 'muted' : t.ok ? 'ok' : 'error'}>${t.busy ? 'Testing…'
            : t.ok ? `Works: answered in ${Math.round(t.latency_ms)} ms.` : `Failed: ${t.error}`}</p>` : null}
        </li>`;
      })}</ul>`}
    <form class="card" onSubmit=${add} aria-labelledby="add-model">
      <h2 id="add-model">Add an OpenAI-compatible endpoint</h2>
      <label>Model name<input name="model_name" required maxlength="200" placeholder="e.g. gpt-4o-mini" /></label>
      <label>Base URL<input name="model_url" required type="url" placeholder="https://api.example.com/v1" /></label>
      <label>API key<input name="api_key" type="password" autocomplete="off" /></label>
      <details><summary>Parameters</summary>
        <label>System prompt<textarea name="system_prompt" rows="3"></textarea></label>
        <div class="row">
          <label>Temperature<input name="temperature" type="number" min="0" max="2" step="0.1" /></label>
          <label>Max tokens<input name="max_length" type="number" min="1" /></label>
          <label>Pages to cite (top K)<input name="top_K" type="number" min="1" max="20" /></label>
        </div>
      </details>
      <label class="check"><input type="checkbox" name="select" />Make it the default</label>
      <button type="submit" class="primary" disabled=${models === null}>Add model</button>
    </form>
    ${deleting && html`<${Confirm} title="Delete model" message=${`Delete “${deleting.model_name}”?`} action="Delete"
      onConfirm=${remove} onClose=${() => setDeleting(null)} />`}
  </section>`;
}
