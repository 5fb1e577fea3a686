import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';

import { del, list, post } from '../api.js';
import { navigate } from '../router.js';
import { Confirm, ErrorText, formatDate, plural } from '../ui.js';

export function KnowledgeBasesPage() {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [deleting, setDeleting] = useState(null);

  const load = () => list('knowledge-bases/').then((kbs) => setItems(kbs.filter((kb) => !kb.is_temp)), setError);
  useEffect(() => { load(); }, []);

  const create = async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = new FormData(form).get('name').trim();
    if (!name) return;
    setError(null);
    try {
      const kb = await post('knowledge-bases/', { knowledge_base_name: name });
      form.reset();
      navigate(`/knowledge-bases/${kb.knowledge_base_id}`);
    } catch (e) { setError(e); }
  };

  const remove = async () => {
    const kb = deleting;
    setDeleting(null);
    try { await del(`knowledge-bases/${kb.knowledge_base_id}/`); await load(); } catch (e) { setError(e); }
  };

  return html`<section class="page">
    <h1>Knowledge bases</h1>
    <form class="row" onSubmit=${create}>
      <label class="grow">New knowledge base<input name="name" placeholder="e.g. Contracts 2025" required
        maxlength="200" /></label>
      <button type="submit" class="primary">Create</button>
    </form>
    <${ErrorText} error=${error} />
    ${items === null ? html`<p role="status">Loading…</p>`
      : items.length === 0 ? html`<p class="empty">No knowledge base yet. Name one above and create it, then add
          PDFs, Office files or images to it.</p>`
      : html`<ul class="cards" aria-label="Your knowledge bases">
        ${items.map((kb) => html`<li class="card kb" key=${kb.knowledge_base_id}>
          <a href=${`/knowledge-bases/${kb.knowledge_base_id}`} class="title">${kb.knowledge_base_name}</a>
          <p class="meta">${plural(kb.file_count, 'file')} · ${plural(kb.page_count, 'page')} · updated ${formatDate(kb.last_modify_at)}</p>
          <button type="button" class="danger small" aria-label=${`Delete ${kb.knowledge_base_name}`}
            onClick=${() => setDeleting(kb)}>Delete</button>
        </li>`)}
      </ul>`}
    ${deleting && html`<${Confirm} title="Delete knowledge base"
      message=${`Move “${deleting.knowledge_base_name}” and its ${plural(deleting.file_count, 'file')} to the trash? Its pages are no longer searched or cited; you can restore it from the Trash for a few days.`}
      action="Delete" onConfirm=${remove} onClose=${() => setDeleting(null)} />`}
  </section>`;
}
