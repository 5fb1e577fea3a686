// One workflow: its graph, a form to run it with inputs, its latest runs.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';

import { del, get, list, post } from '../api.js';
import { navigate } from '../router.js';
import { Confirm, ErrorText, formatDate, plural } from '../ui.js';
import { WorkflowGraph, nodeLabel } from './workflow-graph.js';
import { exportWorkflow } from './workflows.js';

export const RUN_STATUS = {
  pending: 'Queued', running: 'Running', paused: 'Paused at a breakpoint', waiting_input: 'Waiting for your answer',
  succeeded: 'Finished', failed: 'Failed', cancelled: 'Cancelled',
};
export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

// The inputs a run takes: the workflow's variables (their saved values are the defaults) and the names a start
// node lists in `data.inputs` (strings or {name, default}).
function inputsOf(wf) {
  const fields = Object.entries(wf.global_variables || {}).map(([name, value]) => ({ name, value }));
  const start = wf.nodes.find((n) => n.type === 'start');
  for (const item of (start && start.data && Array.isArray(start.data.inputs) ? start.data.inputs : [])) {
    const name = typeof item === 'string' ? item : item && item.name;
    if (name && !fields.some((f) => f.name === name)) fields.push({ name, value: typeof item === 'object' ? item.default ?? '' : '' });
  }
  return fields.filter((f) => !f.name.startsWith('_'));
}

function InputField({ field }) {
  const id = `input-${field.name}`;
  if (typeof field.value === 'boolean') {
    return html`<label class="check"><input type="checkbox" name=${field.name} checked=${field.value} />${field.name}</label>`;
  }
  if (typeof field.value === 'number') {
    return html`<label for=${id}>${field.name}<input id=${id} name=${field.name} type="number" step="any"
      value=${field.value} /></label>`;
  }
  if (field.value !== null && typeof field.value === 'object') {
    return html`<label for=${id}>${field.name} (JSON)<textarea id=${id} name=${field.name} rows="3"
      >${JSON.stringify(field.value, null, 1)}</textarea></label>`;
  }
  return html`<label for=${id}>${field.name}<input id=${id} name=${field.name} value=${field.value ?? ''} /></label>`;
}

function readInputs(form, fields) {
  const values = {};
  for (const field of fields) {
    const el = form.elements.namedItem(field.name);
    if (typeof field.value === 'boolean') values[field.name] = el.checked;
    else if (typeof field.value === 'number') values[field.name] = el.value === '' ? null : Number(el.value);
    else if (field.value !== null && typeof field.value === 'object') {
      try { values[field.name] = JSON.parse(el.value); } catch {
        throw new Error(`The input “${field.name}” must be JSON (for example [1, 2] or {"a": 1}).`);
      }
    } else values[field.name] = el.value;
  }
  return values;
}

export function WorkflowPage({ id }) {
  const [wf, setWf] = useState(null);
  const [runs, setRuns] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState(false);

  useEffect(() => {
    get(`workflows/${id}/`).then(setWf, setError);
    list(`workflows/${id}/runs/`).then(setRuns, () => setRuns([]));
  }, [id]);

  const fields = wf ? inputsOf(wf) : [];
  const run = async (event) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const started = await post(`workflows/${id}/runs/`, { inputs: readInputs(event.currentTarget, fields) });
      navigate(`/workflows/${id}/runs/${started.run_id}`);
    } catch (e) { setError(e); setBusy(false); }
  };
  const remove = async () => {
    setDeleting(false);
    try { await del(`workflows/${id}/`); navigate('/workflows'); } catch (e) { setError(e); }
  };

  return html`<section class="page">
    <p><a href="/workflows">← Workflows</a></p>
    <div class="row"><h1 class="grow">${wf ? wf.workflow_name : 'Workflow'}</h1>
      <button type="button" disabled=${!wf} onClick=${() => exportWorkflow(wf).catch(setError)}>Export</button>
      <button type="button" class="danger" disabled=${!wf} onClick=${() => setDeleting(true)}>Delete</button></div>
    <${ErrorText} error=${error} />
    ${wf ? html`<p class="meta">${plural(wf.nodes.length, 'step')} · version ${wf.version} · updated ${formatDate(wf.last_modify_at)}</p>
      <div class="wf-layout">
        <section class="card" aria-labelledby="graph-title"><h2 id="graph-title">Steps</h2>
          <${WorkflowGraph} workflow=${wf} title=${`Graph of ${wf.workflow_name}`} />
          <ol class="steps-text">${wf.nodes.map((n) => html`<li key=${n.id}>${nodeLabel(n)} <span class="muted">(${n.type.replace('_', ' ')})</span></li>`)}</ol>
        </section>
        <div class="wf-side">
          <form class="card" onSubmit=${run} aria-labelledby="run-title">
            <h2 id="run-title">Run</h2>
            ${fields.length ? html`<p class="hint">Inputs (their saved values are filled in):</p>
              ${fields.map((f) => html`<${InputField} key=${f.name} field=${f} />`)}`
              : html`<p class="hint">This workflow takes no inputs.</p>`}
            <button type="submit" class="primary" disabled=${busy}>${busy ? 'Starting…' : 'Run workflow'}</button>
          </form>
          <section class="card" aria-labelledby="runs-title"><h2 id="runs-title">Latest runs</h2>
            ${runs === null ? html`<p role="status">Loading…</p>`
              : runs.length === 0 ? html`<p class="empty">No run yet. Fill in the inputs above and run it.</p>`
              : html`<ul class="plain">${runs.slice(0, 20).map((r) => html`<li key=${r.run_id}>
                  <a href=${`/workflows/${id}/runs/${r.run_id}`}>${formatDate(r.created_at)}</a>
                  <span class=${`status run-${r.status}`}>${RUN_STATUS[r.status] || r.status}</span></li>`)}</ul>`}
          </section>
        </div>
      </div>` : error ? null : html`<p role="status">Loading…</p>`}
    ${deleting && html`<${Confirm} title="Delete workflow" message=${`Delete “${wf.workflow_name}” and its chatflows?`}
      action="Delete" onConfirm=${remove} onClose=${() => setDeleting(false)} />`}
  </section>`;
}
