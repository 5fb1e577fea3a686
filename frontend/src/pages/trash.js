import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';

import { del, list, post } from '../api.js';
import { Confirm, ErrorText, formatDate } from '../ui.js';

const KIND_LABELS = {
  knowledge_base: 'Knowledge base', file: 'File', conversation: 'Conversation', workflow: 'Workflow',
};
const KIND_LINKS = {
  knowledge_base: (item) => `/knowledge-bases/${item.id}`,
  file: (item) => `/knowledge-bases/${item.knowledge_base_id}`,
  conversation: (item) => `/chat/${item.id}`,
  workflow: (item) => `/workflows/${item.id}`,
};

// Deleted knowledge bases, files, conversations and workflows: restore one whole, or delete it for good.
export function TrashPage() {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [purging, setPurging] = useState(null);
  const [busy, setBusy] = useState(false);

  const load = () => list('trash/').then(setItems, setError);
  useEffect(() => { load(); }, []);

  const act = async (item, call, message) => {
    setBusy(true); setError(null); setDone(null);
    try { await call(); setDone({ item, message }); await load(); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const restore = (item) => act(item, () => post(`trash/${item.kind}/${item.id}/restore/`), 'restored');
  const purge = () => {
    const item = purging;
    setPurging(null);
    act(item, () => del(`trash/${item.kind}/${item.id}/`), 'deleted for good');
  };

  return html`<section class="page">
    <h1>Trash</h1>
    <p class="hint">Deleted knowledge bases, files, conversations and workflows stay here for a few days, then are
      deleted for good. A knowledge base comes back with its files, a workflow with its chatflows.</p>
    <${ErrorText} error=${error} />
    ${done ? html`<p class="ok" role="status">“${done.item.name}” ${done.message}${done.message === 'restored'
      ? html` · <a href=${KIND_LINKS[done.item.kind](done.item)}>open it</a>` : null}.</p>` : null}
    ${items === null ? html`<p role="status">Loading…</p>`
      : items.length === 0 ? html`<p class="empty">The trash is empty. What you delete comes here first, so you can
          bring it back.</p>`
      : html`<ul class="plain trash" aria-label="Deleted items">${items.map((item) => html`<li key=${`${item.kind}:${item.id}`}>
          <span class="kind">${KIND_LABELS[item.kind] || item.kind}</span> <strong>${item.name}</strong>
          <span class="muted"> deleted ${formatDate(item.deleted_at)}${item.purge_after
            ? `, deleted for good after ${formatDate(item.purge_after)}` : ''}${item.replaced_by
            ? ' (an older version)' : ''}</span>
          <span class="row">
            <button type="button" class="small" disabled=${busy} aria-label=${`Restore ${item.name}`}
              onClick=${() => restore(item)}>Restore</button>
            <button type="button" class="small danger" disabled=${busy} aria-label=${`Delete ${item.name} for good`}
              onClick=${() => setPurging(item)}>Delete for good</button>
          </span>
        </li>`)}</ul>`}
    ${purging && html`<${Confirm} title="Delete for good"
      message=${`Delete “${purging.name}” for good? Its pages, images and vectors are removed; this cannot be undone.`}
      action="Delete for good" onConfirm=${purge} onClose=${() => setPurging(null)} />`}
  </section>`;
}
