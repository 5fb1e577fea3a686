// Workflows: the list (import from a JSON file, export, delete, an example to start from).
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';

import { del, get, list, post } from '../api.js';
import { navigate } from '../router.js';
import { Confirm, ErrorText, formatDate, plural } from '../ui.js';

// A first workflow to try: it asks a question, waits for the answer and writes a greeting.
export const EXAMPLE = {
  workflow_name: 'Example: greet someone',
  nodes: [
    { id: 'start', type: 'start', data: {} },
    { id: 'ask', type: 'human_input', data: { prompt: 'Hello {{ name }}! What is your favourite colour?', variable: 'colour' } },
    { id: 'greet', type: 'variable', data: { assignments: { greeting: "'Hello ' + name + ', you like ' + colour + '.'" } } },
    { id: 'end', type: 'end', data: { outputs: { greeting: 'greeting' } } },
  ],
  edges: [{ source: 'start', target: 'ask' }, { source: 'ask', target: 'greet' }, { source: 'greet', target: 'end' }],
  global_variables: { name: 'friend' },
};

// Saves JSON as a file through a blob: link (same origin; nothing leaves the browser).
export function downloadJson(data, filename) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export const fileName = (name) => `${name.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'workflow'}.json`;

export async function exportWorkflow(wf) {
  downloadJson(await get(`workflows/${wf.workflow_id}/export/`), fileName(wf.workflow_name));
}

export function WorkflowsPage() {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const [busy, setBusy] = useState(false);
  const picker = useRef(null);

  const load = () => list('workflows/').then(setItems, setError);
  useEffect(() => { load(); }, []);

  const importFile = async (file) => {
    if (!file) return;
    setError(null);
    setBusy(true);
    try {
      let data;
      try { data = JSON.parse(await file.text()); } catch {
        throw new Error(`${file.name} is not a workflow export: it is not valid JSON.`);
      }
      const wf = await post('workflows/import/', data);
      navigate(`/workflows/${wf.workflow_id}`);
    } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const addExample = async () => {
    setError(null);
    setBusy(true);
    try { const wf = await post('workflows/', EXAMPLE); navigate(`/workflows/${wf.workflow_id}`); }
    catch (e) { setError(e); } finally { setBusy(false); }
  };
  const remove = async () => {
    const wf = deleting;
    setDeleting(null);
    try { await del(`workflows/${wf.workflow_id}/`); await load(); } catch (e) { setError(e); }
  };
  const doExport = (wf) => exportWorkflow(wf).catch(setError);

  return html`<section class="page">
    <h1>Workflows</h1>
    <p class="hint">A workflow chains steps (questions to you, models, searches, code, web requests). Run one with
      inputs and watch each step; a step that asks you something waits for your answer.</p>
    <div class="row">
      <button type="button" class="primary" disabled=${busy} onClick=${() => picker.current.click()}>Import from a file…</button>
      <input ref=${picker} type="file" accept=".json,application/json" hidden aria-label="Workflow file to import"
        onChange=${(e) => { importFile(e.target.files[0]); e.target.value = ''; }} />
      <button type="button" disabled=${busy} onClick=${addExample}>Add an example workflow</button>
    </div>
    <${ErrorText} error=${error} />
    ${items === null ? html`<p role="status">Loading…</p>`
      : items.length === 0 ? html`<p class="empty">No workflow yet. Import one exported from LAYRA (a .json file),
          or add the example to see how a run works.</p>`
      : html`<ul class="cards" aria-label="Your workflows">
        ${items.map((wf) => html`<li class="card" key=${wf.workflow_id}>
          <a href=${`/workflows/${wf.workflow_id}`} class="title">${wf.workflow_name}</a>
          <p class="meta">${plural(wf.nodes.length, 'step')} · version ${wf.version} · updated ${formatDate(wf.last_modify_at)}</p>
          <div class="row">
            <button type="button" class="small" aria-label=${`Export ${wf.workflow_name}`}
              onClick=${() => doExport(wf)}>Export</button>
            <button type="button" class="small danger" aria-label=${`Delete ${wf.workflow_name}`}
              onClick=${() => setDeleting(wf)}>Delete</button>
          </div>
        </li>`)}
      </ul>`}
    ${deleting && html`<${Confirm} title="Delete workflow"
      message=${`Move “${deleting.workflow_name}” and its chatflows to the trash? You can restore them from the Trash for a few days.`}
      action="Delete" onConfirm=${remove} onClose=${() => setDeleting(null)} />`}
  </section>`;
}
