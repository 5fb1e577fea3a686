// A read-only drawing of a workflow graph as SVG: nodes in layers from the start node down (or at their saved
// editor positions), edges as arrows with their labels. Node states during a run are CSS classes, never inline
// styles (the Content-Security-Policy allows no inline style).
import { html } from 'htm/preact';

import { plural } from '../ui.js';

const W = 150;
const H = 46;
const GAP_X = 30;
const GAP_Y = 46;
const PAD = 16;

// Depth of each node by breadth-first search from the start node; unreachable nodes go in a last layer.
function layers(nodes, edges, start) {
  const depth = { [start]: 0 };
  const queue = [start];
  while (queue.length) {
    const id = queue.shift();
    for (const e of edges) {
      if (e.source === id && depth[e.target] === undefined) { depth[e.target] = depth[id] + 1; queue.push(e.target); }
    }
  }
  const last = Math.max(0, ...Object.values(depth)) + 1;
  const rows = [];
  for (const n of nodes) {
    const d = depth[n.id] ?? last;
    (rows[d] = rows[d] || []).push(n);
  }
  return rows.filter(Boolean);
}

function layout(nodes, edges, start) {
  const saved = nodes.every((n) => n.position && Number.isFinite(n.position.x) && Number.isFinite(n.position.y));
  const at = {};
  if (saved && nodes.length) {
    const minX = Math.min(...nodes.map((n) => n.position.x));
    const minY = Math.min(...nodes.map((n) => n.position.y));
    for (const n of nodes) at[n.id] = { x: PAD + n.position.x - minX, y: PAD + n.position.y - minY };
  } else {
    const rows = layers(nodes, edges, start);
    const widest = Math.max(1, ...rows.map((r) => r.length));
    const full = widest * W + (widest - 1) * GAP_X;
    rows.forEach((row, r) => {
      const width = row.length * W + (row.length - 1) * GAP_X;
      row.forEach((n, i) => {
        at[n.id] = { x: PAD + (full - width) / 2 + i * (W + GAP_X), y: PAD + r * (H + GAP_Y) };
      });
    });
  }
  const width = Math.max(W, ...Object.values(at).map((p) => p.x + W)) + PAD;
  const height = Math.max(H, ...Object.values(at).map((p) => p.y + H)) + PAD;
  return { at, width, height };
}

// The path of one edge: down from the source's bottom to the target's top, or (back to an earlier layer, as a
// loop's body returns) out to the right and round.
function edgePath(a, b) {
  const sx = a.x + W / 2;
  const sy = a.y + H;
  const tx = b.x + W / 2;
  const ty = b.y;
  if (ty > sy) {
    const mid = (sy + ty) / 2;
    return { d: `M${sx},${sy} C${sx},${mid} ${tx},${mid} ${tx},${ty}`, lx: (sx + tx) / 2, ly: mid };
  }
  const rx = Math.max(a.x, b.x) + W + GAP_X / 1.5;
  const d = `M${a.x + W},${a.y + H / 2} C${rx},${a.y + H / 2} ${rx},${b.y + H / 2} ${b.x + W},${b.y + H / 2}`;
  return { d, lx: rx - 4, ly: (a.y + b.y + H) / 2 };
}

const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

export const nodeLabel = (n) => (n.data && n.data.title) || n.custom_name || n.id;

// `states` maps a node id to running | done | failed | waiting (during a run); others are drawn plain.
export function WorkflowGraph({ workflow, states = {}, title }) {
  const { nodes = [], edges = [], start_node: start } = workflow;
  const { at, width, height } = layout(nodes, edges, start || (nodes.find((n) => n.type === 'start') || {}).id);
  const described = `${plural(nodes.length, 'step')}, ${plural(edges.length, 'connection')}.`;
  return html`<figure class="graph">
    <svg viewBox=${`0 0 ${width} ${height}`} width=${width} role="img" aria-label=${`${title}: ${described}`}
        class=${`graph-svg ${width > 1400 ? 'scroll' : ''}`} preserveAspectRatio="xMidYMin meet">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7"
        orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow-head" /></marker></defs>
      ${edges.map((e, i) => {
        const a = at[e.source];
        const b = at[e.target];
        if (!a || !b) return null;
        const { d, lx, ly } = edgePath(a, b);
        return html`<g key=${`e${i}`} class="edge"><path d=${d} marker-end="url(#arrow)" />
          ${e.label ? html`<text x=${lx} y=${ly} class="edge-label" text-anchor="middle">${e.label}</text>` : null}</g>`;
      })}
      ${nodes.map((n) => {
        const p = at[n.id];
        const state = states[n.id];
        return html`<g key=${n.id} class=${`node node-${n.type} ${state ? `state-${state}` : ''}`}
            transform=${`translate(${p.x},${p.y})`} data-node=${n.id}>
          <title>${nodeLabel(n)} (${n.type})</title>
          <rect width=${W} height=${H} rx="8" />
          <text x=${W / 2} y="19" text-anchor="middle" class="node-name">${clip(nodeLabel(n), 20)}</text>
          <text x=${W / 2} y="36" text-anchor="middle" class="node-type">${n.type.replace('_', ' ')}${
            state ? ` · ${state === 'waiting' ? 'waiting' : STATE_WORDS[state]}` : ''}</text>
        </g>`;
      })}
    </svg>
  </figure>`;
}

export const STATE_WORDS = {
  running: 'running', done: 'done', failed: 'failed', waiting: 'waiting for you', paused: 'paused',
  stopped: 'stopped',
};
