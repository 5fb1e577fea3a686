import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';

import { del, get, list, patch, post, put, stream, upload } from '../api.js';
import { renderMarkdown } from '../markdown.js';
import { navigate } from '../router.js';
import { Confirm, Dialog, ErrorText, PageCard, PageViewer } from '../ui.js';
import { ConversationFiles } from './conversation-files.js';

// Turns form a tree (parent_message_id); the page shows one branch, root to `leaf`.
function branchOf(turns, leaf) {
  const byId = Object.fromEntries(turns.map((t) => [t.message_id, t]));
  const path = [];
  for (let t = byId[leaf]; t; t = byId[t.parent_message_id]) path.unshift(t);
  return path;
}
const childrenOf = (turns, parent) => turns.filter((t) => (t.parent_message_id || null) === (parent || null));
function deepestLeaf(turns, start) {
  let current = start;
  for (;;) {
    const kids = childrenOf(turns, current.message_id);
    if (!kids.length) return current.message_id;
    current = kids[kids.length - 1];
  }
}
const latestLeaf = (turns) => (turns.length
  ? [...turns].sort((a, b) => a.timestamp.localeCompare(b.timestamp)).at(-1).message_id : null);

function Markdown({ text }) {
  // Sanitised by DOMPurify in renderMarkdown: model output never reaches the DOM as raw HTML.
  return html`<div class="markdown" dangerouslySetInnerHTML=${{ __html: renderMarkdown(text) }}></div>`;
}

function Turn({ turn, siblings, onSwitch, onRegenerate, onEdit, onOpen, busy }) {
  const [editing, setEditing] = useState(false);
  const index = siblings.findIndex((s) => s.message_id === turn.message_id);
  const submitEdit = (event) => {
    event.preventDefault();
    const question = new FormData(event.currentTarget).get('question').trim();
    if (question) { setEditing(false); onEdit(turn, question); }
  };
  return html`<article class="turn" aria-label="Question and answer">
    <div class="bubble user">
      ${editing
        ? html`<form onSubmit=${submitEdit}><label>Edit question<textarea name="question" rows="3"
            >${turn.user_message}</textarea></label>
            <div class="row end"><button type="button" onClick=${() => setEditing(false)}>Cancel</button>
            <button type="submit" class="primary">Send</button></div></form>`
        : html`<p class="question">${turn.user_message}</p>`}
    </div>
    <div class="bubble ai" aria-live=${turn.status === 'streaming' ? 'polite' : 'off'}>
      <${Markdown} text=${turn.ai_message} />
      ${turn.status === 'streaming' && !turn.ai_message ? html`<p class="muted" role="status">Thinking…</p>` : null}
      ${turn.status === 'failed' || turn.status === 'cancelled'
        ? html`<p class="error" role="alert">${turn.error || 'The answer did not complete.'}</p>` : null}
      ${turn.file_used && turn.file_used.length ? html`<div class="citations" aria-label="Cited pages">
        ${turn.file_used.map((hit) => html`<${PageCard} hit=${hit} onOpen=${onOpen} />`)}</div>` : null}
      <div class="turn-tools">
        ${siblings.length > 1 ? html`<span class="switcher" role="group" aria-label="Versions of this answer">
          <button type="button" class="small" aria-label="Previous version" disabled=${index <= 0 || busy}
            onClick=${() => onSwitch(siblings[index - 1])}>‹</button>
          <span>${index + 1} / ${siblings.length}</span>
          <button type="button" class="small" aria-label="Next version" disabled=${index >= siblings.length - 1 || busy}
            onClick=${() => onSwitch(siblings[index + 1])}>›</button></span>` : null}
        <button type="button" class="small" disabled=${busy} onClick=${() => onRegenerate(turn)}>Regenerate</button>
        <button type="button" class="small" disabled=${busy} onClick=${() => setEditing(true)}>Edit question</button>
      </div>
    </div>
  </article>`;
}

function NewConversation({ models, kbs, onStart }) {
  const selected = models.find((m) => m.is_selected) || models[0];
  const [picked, setModelId] = useState('');
  const modelId = picked || (selected ? selected.model_id : '');  // the models may arrive after the first render
  const model = models.find((m) => m.model_id === modelId);
  const preset = new URLSearchParams(location.search).get('kb');
  const [chosen, setChosen] = useState(new Set(preset ? [preset] : (model ? model.base_used : [])));
  const [error, setError] = useState(null);
  if (!models.length) {
    return html`<div class="empty card"><h2>No model yet</h2><p>Add an OpenAI-compatible model first.</p>
      <a class="button primary" href="/models">Add a model</a></div>`;
  }
  const toggle = (id) => { const next = new Set(chosen); next.has(id) ? next.delete(id) : next.add(id); setChosen(next); };
  const start = async (event) => {
    event.preventDefault();
    setError(null);
    try { await onStart(modelId, [...chosen], new FormData(event.currentTarget).get('name')); } catch (e) { setError(e); }
  };
  return html`<form class="card new-chat" onSubmit=${start} aria-labelledby="new-chat-title">
    <h2 id="new-chat-title">New conversation</h2>
    <label>Name (optional)<input name="name" maxlength="200" placeholder="e.g. Contract questions" /></label>
    <label>Model<select name="model" value=${modelId} onChange=${(e) => setModelId(e.target.value)}>
      ${models.map((m) => html`<option value=${m.model_id}>${m.model_name}</option>`)}</select></label>
    <fieldset><legend>Knowledge bases to search</legend>
      ${kbs.length === 0 ? html`<p class="hint">No knowledge base yet: <a href="/knowledge-bases">create one</a>,
        or chat without documents.</p>` : kbs.map((kb) => html`<label class="check">
        <input type="checkbox" checked=${chosen.has(kb.knowledge_base_id)}
          onChange=${() => toggle(kb.knowledge_base_id)} />${kb.knowledge_base_name}</label>`)}
    </fieldset>
    <${ErrorText} error=${error} />
    <button type="submit" class="primary">Start</button>
  </form>`;
}

export function ChatPage({ id }) {
  const [conversations, setConversations] = useState(null);
  const [conversation, setConversation] = useState(null);
  const [models, setModels] = useState(null); // null until loaded: the new-conversation form waits for both
  const [kbs, setKbs] = useState(null);
  const [leaf, setLeaf] = useState(null);
  const [pending, setPending] = useState(null);
  const [error, setError] = useState(null);
  const [viewing, setViewing] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const [renaming, setRenaming] = useState(null);
  const [modelId, setModelId] = useState(null);
  const [attaching, setAttaching] = useState(null);
  const [attached, setAttached] = useState(0); // uploads so far: the files list reads again after each
  const aborter = useRef(null);
  const bottom = useRef(null);
  const attachPicker = useRef(null);

  const loadList = () => list('conversations/').then(setConversations, setError);
  const loadConversation = async (keepLeaf) => {
    const detail = await get(`conversations/${id}/`);
    setConversation(detail);
    setLeaf((current) => keepLeaf || (current && detail.turns.some((t) => t.message_id === current)
      ? current : latestLeaf(detail.turns)));
    return detail;
  };
  useEffect(() => {
    loadList();
    list('models/').then((m) => { setModels(m); const s = m.find((x) => x.is_selected); setModelId(s && s.model_id); }, setError);
    list('knowledge-bases/').then((k) => setKbs(k.filter((kb) => !kb.is_temp)), setError);
  }, []);
  useEffect(() => {
    setConversation(null); setLeaf(null); setPending(null); setError(null);
    if (id) loadConversation().catch(setError);
    return () => aborter.current && aborter.current.abort();
  }, [id]);

  const turns = conversation ? conversation.turns : [];
  const branch = useMemo(() => branchOf(turns, leaf), [turns, leaf]);
  useEffect(() => { bottom.current && bottom.current.scrollIntoView({ block: 'end' }); }, [branch.length, pending]);

  const ask = async (question, parentId) => {
    setError(null);
    const shown = { message_id: 'pending', parent_message_id: parentId, user_message: question, ai_message: '',
      status: 'streaming', file_used: [] };
    setPending(shown);
    aborter.current = new AbortController();
    let messageId = null;
    try {
      await stream(`conversations/${id}/messages`, {
        method: 'POST', body: { question, parent_message_id: parentId, ...(modelId ? { model_id: modelId } : {}) },
      }, (name, data) => {
        if (name === 'citations') { messageId = data.message_id; setPending((p) => ({ ...p, file_used: data.citations })); }
        else if (name === 'token') setPending((p) => ({ ...p, ai_message: p.ai_message + data.text }));
        else if (name === 'error') setPending((p) => ({ ...p, status: 'failed', error: data.message }));
      }, aborter.current.signal);
      await loadConversation(messageId);
      setPending(null);
      loadList();
    } catch (e) {
      if (e.name === 'AbortError') return;
      setPending(null);
      setError(e);
      if (messageId) loadConversation(messageId).catch(() => {});
    }
  };

  const send = (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const question = new FormData(form).get('question').trim();
    if (!question || pending || !conversation) return; // the branch to continue is known once it is loaded
    form.reset();
    ask(question, leaf || null);
  };
  const onKey = (event) => {
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); event.currentTarget.form.requestSubmit(); }
  };

  const start = async (chosenModel, kbIds, name) => {
    await patch(`models/${chosenModel}/`, { base_used: kbIds });
    await put('models/selected', { model_id: chosenModel });
    const created = await post('conversations/', name ? { conversation_name: name } : {});
    setModelId(chosenModel);
    await loadList();
    navigate(`/chat/${created.conversation_id}`);
  };

  const rename = async (event) => {
    event.preventDefault();
    const c = renaming;
    const name = new FormData(event.currentTarget).get('name').trim();
    if (!name) return;
    setRenaming(null);
    try { await patch(`conversations/${c.conversation_id}/`, { conversation_name: name }); loadList(); if (c.conversation_id === id) loadConversation(); }
    catch (e) { setError(e); }
  };
  const remove = async () => {
    const c = deleting;
    setDeleting(null);
    try { await del(`conversations/${c.conversation_id}/`); await loadList(); if (c.conversation_id === id) navigate('/chat'); }
    catch (e) { setError(e); }
  };
  const attach = async (files) => {
    if (!files.length) return;
    setAttaching(files.map((f) => f.name).join(', '));
    try { await upload(`conversations/${id}/files`, files); await loadConversation(leaf); setAttached((n) => n + 1); }
    catch (e) { setError(e); } finally { setAttaching(null); }
  };

  const shownTurns = pending ? [...branch, pending] : branch;
  return html`<div class="chat">
    <aside class="conversations" aria-label="Conversations">
      <a class="button primary" href="/chat">New conversation</a>
      ${conversations === null ? html`<p role="status">Loading…</p>`
        : conversations.length === 0 ? html`<p class="empty">No conversation yet.</p>`
        : html`<ul>${conversations.map((c) => html`<li key=${c.conversation_id}
            class=${c.conversation_id === id ? 'current' : ''}>
          <a href=${`/chat/${c.conversation_id}`} aria-current=${c.conversation_id === id ? 'page' : undefined}>
            ${c.conversation_name || 'Untitled'}</a>
          <button type="button" class="icon" aria-label=${`Rename ${c.conversation_name || 'Untitled'}`} onClick=${() => setRenaming(c)}>✎</button>
          <button type="button" class="icon" aria-label=${`Delete ${c.conversation_name || 'Untitled'}`} onClick=${() => setDeleting(c)}>✕</button>
        </li>`)}</ul>`}
    </aside>
    <section class="conversation">
      ${!id ? (models === null || kbs === null ? html`<p role="status">Loading…</p>`
          : html`<${NewConversation} models=${models} kbs=${kbs} onStart=${start} />`)
        : html`<header class="row"><h1 class="grow">${conversation ? conversation.conversation_name || 'Untitled' : 'Conversation'}</h1>
            ${models && models.length ? html`<label class="inline">Model <select value=${modelId || ''}
              onChange=${(e) => setModelId(e.target.value)}>${models.map((m) => html`<option value=${m.model_id}>${m.model_name}</option>`)}
              </select></label>` : null}</header>
          <div class="turns">
            ${conversation && shownTurns.length === 0 ? html`<p class="empty">Ask a question about your documents below.
              The pages an answer comes from appear under it; select one to see it large.</p>` : null}
            ${shownTurns.map((turn) => html`<${Turn} key=${turn.message_id} turn=${turn}
              siblings=${turn === pending ? [turn] : childrenOf(turns, turn.parent_message_id)} busy=${Boolean(pending)}
              onSwitch=${(s) => setLeaf(deepestLeaf(turns, s))} onOpen=${setViewing}
              onRegenerate=${(t) => ask(t.user_message, t.parent_message_id || null)}
              onEdit=${(t, q) => ask(q, t.parent_message_id || null)} />`)}
            <div ref=${bottom}></div>
          </div>
          ${conversation && conversation.temp_db ? html`<${ConversationFiles} key=${conversation.temp_db} kbId=${conversation.temp_db}
            version=${attached} />` : null}
          <${ErrorText} error=${error} />
          <form class="ask" onSubmit=${send}>
            <label class="grow">Your question<textarea name="question" rows="2" required onKeyDown=${onKey}
              placeholder="Ask about your documents (Enter sends, Shift+Enter for a new line)"></textarea></label>
            <div class="ask-tools">
              <button type="button" onClick=${() => attachPicker.current.click()} disabled=${Boolean(attaching)}>Attach files</button>
              <input ref=${attachPicker} type="file" multiple hidden aria-label="Files for this conversation"
                onChange=${(e) => { attach([...e.target.files]); e.target.value = ''; }} />
              ${pending ? html`<button type="button" onClick=${() => { aborter.current.abort(); setPending(null); loadConversation(); }}>Stop</button>`
                : html`<button type="submit" class="primary" disabled=${!conversation}>Send</button>`}
            </div>
          </form>
          ${attaching ? html`<p role="status">Adding ${attaching} to this conversation…</p>` : null}`}
    </section>
    ${viewing && html`<${PageViewer} hit=${viewing} onClose=${() => setViewing(null)} />`}
    ${renaming && html`<${Dialog} title="Rename conversation" onClose=${() => setRenaming(null)}>
      <form onSubmit=${rename}><label>New name<input name="name" required maxlength="200" autofocus
        value=${renaming.conversation_name} /></label>
        <div class="row end"><button type="button" onClick=${() => setRenaming(null)}>Cancel</button>
          <button type="submit" class="primary">Rename</button></div></form>
    <//>`}
    ${deleting && html`<${Confirm} title="Delete conversation" message=${`Move “${deleting.conversation_name || 'Untitled'}” to the trash? You can restore it from the Trash for a few days.`}
      action="Delete" onConfirm=${remove} onClose=${() => setDeleting(null)} />`}
  </div>`;
}
