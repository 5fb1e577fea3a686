import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';

import { list, post } from '../api.js';
import { ErrorText, PageCard, PageViewer } from '../ui.js';

export function SearchPage() {
  const [kbs, setKbs] = useState(null);
  const [chosen, setChosen] = useState(new Set());
  const [results, setResults] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [viewing, setViewing] = useState(null);

  useEffect(() => {
    list('knowledge-bases/').then((all) => {
      const mine = all.filter((kb) => !kb.is_temp);
      setKbs(mine);
      setChosen(new Set(mine.map((kb) => kb.knowledge_base_id)));
    }, setError);
  }, []);

  const search = async (event) => {
    event.preventDefault();
    const query = new FormData(event.currentTarget).get('query').trim();
    if (!query) return;
    if (!chosen.size) { setError(new Error('Choose at least one knowledge base to search.')); return; }
    setBusy(true); setError(null);
    try {
      const body = await post('search/', { query, knowledge_base_ids: [...chosen], top_k: 10 });
      setResults(body.results || []);
    } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const toggle = (id) => {
    const next = new Set(chosen);
    next.has(id) ? next.delete(id) : next.add(id);
    setChosen(next);
    setError(null);
  };

  return html`<section class="page">
    <h1>Search</h1>
    <form role="search" class="row" onSubmit=${search}>
      <label class="grow">Search your pages<input name="query" type="search" required
        placeholder="What are you looking for?" /></label>
      <button type="submit" class="primary" disabled=${busy || kbs === null}>Search</button>
    </form>
    ${kbs && kbs.length ? html`<fieldset class="inline-set"><legend>In</legend>${kbs.map((kb) => html`<label class="check">
      <input type="checkbox" checked=${chosen.has(kb.knowledge_base_id)} onChange=${() => toggle(kb.knowledge_base_id)} />
      ${kb.knowledge_base_name}</label>`)}</fieldset>` : null}
    ${kbs && !kbs.length ? html`<p class="empty">Nothing to search yet: <a href="/knowledge-bases">create a knowledge
      base</a> and add files to it.</p>` : null}
    <${ErrorText} error=${error} />
    ${busy ? html`<p role="status">Searching…</p>` : null}
    ${results && !busy ? (results.length
      ? html`<div class="page-grid results" aria-label="Results">${results.map((hit) => html`<${PageCard} hit=${hit}
          onOpen=${setViewing} />`)}</div>`
      : html`<p class="empty">No page matches. Try other words, or check that the files are ready.</p>`) : null}
    ${viewing && html`<${PageViewer} hit=${viewing} onClose=${() => setViewing(null)} />`}
  </section>`;
}
