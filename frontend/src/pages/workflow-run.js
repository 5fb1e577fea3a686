// One run, live: each step's state from the run's event stream (runs/{id}/events), the question a human-input
// step asks, cancel, the outputs or the error in words.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';

import { get, post, stream } from '../api.js';
import { ErrorText, formatDate } from '../ui.js';
import { STATE_WORDS, WorkflowGraph, nodeLabel } from './workflow-graph.js';
import { RUN_STATUS, TERMINAL } from './workflow.js';

const WAITING = new Set(['waiting_input', 'paused']);
const show = (value) => (typeof value === 'string' ? value : JSON.stringify(value, null, 2));

function describe(name, data, label) {
  const node = data.node_id ? label(data.node_id) : '';
  return {
    run_queued: 'Run queued.', run_started: 'Run started.', run_resumed: 'Run resumed.',
    node_started: `${node}: started.`, node_finished: `${node}: done.`,
    node_error: `${node}: failed: ${data.message}`, run_waiting_input: `${node} is waiting for your answer.`,
    run_paused: `Paused before ${node}.`,
    run_finished: `Run ${RUN_STATUS[data.status] ? RUN_STATUS[data.status].toLowerCase() : data.status}.`,
  }[name];
}

const sendOnEnter = (event) => {
  if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); event.currentTarget.form.requestSubmit(); }
};

function AnswerForm({ pending, onAnswer, disabled }) {
  const submit = (event) => {
    event.preventDefault();
    onAnswer(new FormData(event.currentTarget).get('answer'));
  };
  return html`<form class="card notice" onSubmit=${submit} aria-labelledby="answer-title">
    <h2 id="answer-title">Your answer is needed</h2>
    <label>${pending.prompt || `A value for ${pending.variable}`}<textarea name="answer" rows="2" required autofocus
      onKeyDown=${sendOnEnter} placeholder="Enter sends, Shift+Enter for a new line"></textarea></label>
    <button type="submit" class="primary" disabled=${disabled}>Send answer</button>
  </form>`;
}

export function RunPage({ workflowId, runId }) {
  const [wf, setWf] = useState(null);
  const [run, setRun] = useState(null);
  const [states, setStates] = useState({});
  const [nodeOut, setNodeOut] = useState({});
  const [latest, setLatest] = useState('');
  const [error, setError] = useState(null);
  const [acting, setActing] = useState(false);
  const [following, setFollowing] = useState(false);
  const next = useRef(0); // index of the next event to read
  const finished = useRef(0); // node_finished events seen; the run's completed_nodes has one entry for each
  const loop = useRef(null);
  const acted = useRef(false); // a cancel or answer while the loop reads: what it read may be older than that
  const aborter = useRef(new AbortController());
  const labels = useRef({});
  const label = (id) => labels.current[id] || id;

  const apply = (name, data) => {
    const id = data.node_id;
    if (name === 'node_started') setStates((s) => ({ ...s, [id]: 'running' }));
    else if (name === 'node_finished') {
      finished.current += 1;
      setStates((s) => ({ ...s, [id]: 'done' }));
      if (data.output !== undefined && data.output !== null) setNodeOut((o) => ({ ...o, [id]: show(data.output) }));
    } else if (name === 'node_output') setNodeOut((o) => ({ ...o, [id]: (o[id] || '') + (data.text || '') }));
    else if (name === 'node_error') {
      setStates((s) => ({ ...s, [id]: 'failed' }));
      setNodeOut((o) => ({ ...o, [id]: data.message }));
    } else if (name === 'run_waiting_input') setStates((s) => ({ ...s, [id]: 'waiting' }));
    else if (name === 'run_paused') setStates((s) => ({ ...s, [id]: 'paused' }));
    else if (name === 'run_finished' && data.status !== 'succeeded') {
      setStates((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k,
        v === 'running' || v === 'waiting' || v === 'paused' ? 'stopped' : v])));
    }
    const text = describe(name, data, label);
    if (text) setLatest(text);
  };

  // Read events until the run ends or waits for a person; each stream ends at such an event (or a server limit),
  // then the run's state says whether more is to come.
  const follow = async () => {
    const token = {};
    loop.current = token;
    setFollowing(true);
    try {
      for (;;) {
        let last = null;
        let got = 0;
        await stream(`runs/${runId}/events?from=${next.current}`, { method: 'GET' }, (name, data) => {
          next.current += 1;
          got += 1;
          last = name;
          apply(name, data);
        }, aborter.current.signal);
        if (loop.current !== token) return;
        const detail = await get(`runs/${runId}/`);
        setRun(detail);
        const stale = acted.current; // read before a cancel landed: its run_finished is still to come
        acted.current = false;
        const caughtUp = finished.current >= detail.completed_nodes.length;
        if (TERMINAL.has(detail.status) && (last === 'run_finished' || caughtUp || !got)) {
          if (last !== 'run_finished') apply('run_finished', { status: detail.status });
          return;
        }
        if (WAITING.has(detail.status) && caughtUp && !stale
          && (last === 'run_waiting_input' || last === 'run_paused')) return;
      }
    } catch (e) {
      if (e.name !== 'AbortError') setError(e);
    } finally {
      if (loop.current === token) { loop.current = null; setFollowing(false); }
    }
  };

  useEffect(() => {
    get(`workflows/${workflowId}/`).then((w) => {
      labels.current = Object.fromEntries(w.nodes.map((n) => [n.id, nodeLabel(n)]));
      setWf(w);
    }, setError);
    get(`runs/${runId}/`).then((r) => {
      setRun(r);
      if (!TERMINAL.has(r.status)) { follow(); return; }
      // A finished run is shown from its saved state (its events are kept for a day only).
      const done = Object.fromEntries(r.completed_nodes.map((id) => [id, 'done']));
      if (r.error && r.error.node_id) done[r.error.node_id] = r.status === 'failed' ? 'failed' : 'stopped';
      setStates(done);
    }, setError);
    const stop = aborter.current;
    return () => { loop.current = null; stop.abort(); };
  }, [workflowId, runId]);

  const act = async (path, body) => {
    setError(null);
    setActing(true);
    try {
      setRun(await post(`runs/${runId}/${path}`, body));
      if (loop.current) acted.current = true;
      else follow();
    } catch (e) { setError(e); } finally { setActing(false); }
  };

  const status = run ? run.status : null;
  const waiting = run && WAITING.has(status) && !following;
  return html`<section class="page">
    <p><a href=${`/workflows/${workflowId}`}>← ${wf ? wf.workflow_name : 'Workflow'}</a></p>
    <div class="row"><h1 class="grow">Run ${run ? `of ${formatDate(run.created_at)}` : ''}</h1>
      ${run && !TERMINAL.has(status) ? html`<button type="button" class="danger" disabled=${acting}
        onClick=${() => act('cancel')}>Cancel run</button>` : null}</div>
    <p class="run-status">Status: <strong class=${`status run-${status}`} data-status=${status}>${status
      ? RUN_STATUS[status] || status : 'Loading…'}</strong></p>
    <p class="muted" role="status" aria-live="polite">${latest}</p>
    <${ErrorText} error=${error} />
    ${waiting && status === 'waiting_input' && run.pending_input ? html`<${AnswerForm} pending=${run.pending_input}
        disabled=${acting} onAnswer=${(value) => act('input', { action: 'answer', value })} />` : null}
    ${waiting && status === 'paused' ? html`<div class="card notice"><p>Paused at a breakpoint before
        ${label(run.current_node)}.</p><button type="button" class="primary" disabled=${acting}
        onClick=${() => act('input', { action: 'continue' })}>Continue</button></div>` : null}
    ${run && status === 'failed' && run.error ? html`<p class="error" role="alert">The run failed${run.error.node_id
      ? ` at ${label(run.error.node_id)}` : ''}: ${run.error.message}</p>` : null}
    ${run && status === 'succeeded' ? html`<section class="card" aria-labelledby="outputs-title">
      <h2 id="outputs-title">Outputs</h2>
      ${Object.keys(run.outputs || {}).length ? html`<dl class="outputs">${Object.entries(run.outputs).map(([k, v]) => html`
        <dt>${k}</dt><dd><pre>${show(v)}</pre></dd>`)}</dl>` : html`<p class="muted">This run has no outputs.</p>`}
    </section>` : null}
    ${wf ? html`<div class="wf-layout">
      <section class="card" aria-labelledby="graph-title"><h2 id="graph-title">Steps</h2>
        <${WorkflowGraph} workflow=${wf} states=${states} title=${`Progress of ${wf.workflow_name}`} /></section>
      <section class="card" aria-labelledby="steps-title"><h2 id="steps-title">Step by step</h2>
        <ol class="run-steps">${wf.nodes.map((n) => html`<li key=${n.id} data-node=${n.id}
            class=${`state-${states[n.id] || 'none'}`}>
          <span class="step-name">${nodeLabel(n)}</span>
          <span class="step-state">${STATE_WORDS[states[n.id]] || 'not started'}</span>
          ${nodeOut[n.id] ? html`<pre class="step-out">${nodeOut[n.id]}</pre>` : null}</li>`)}</ol></section>
    </div>` : null}
  </section>`;
}
