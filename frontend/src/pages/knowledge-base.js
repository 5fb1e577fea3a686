import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';

import { del, get, list, patch, stream, upload } from '../api.js';
import { navigate } from '../router.js';
import { Confirm, Dialog, ErrorText, PageCard, PageViewer, formatDate, formatEta, formatSize, plural } from '../ui.js';

export const DONE = new Set(['completed', 'failed', 'cancelled']);

// Follows one ingestion task's event stream, handing each progress snapshot to `onProgress`.
export async function followTask(taskId, onProgress, signal) {
  await stream(`tasks/${taskId}/events`, { method: 'GET' }, (name, data) => {
    if (name === 'progress' || name === 'end') onProgress(data);
  }, signal);
}

// A task's state in words, per page where it works page by page: `processed` counts page steps, each page
// rendered then embedded (`total` is twice the page count).
function progressText(task) {
  const pages = task.pages_total || 0;
  const done = task.processed || 0;
  const clamp = (n) => Math.min(Math.max(n, 0), pages);
  return {
    queued: 'Waiting for a worker',
    converting: 'Converting to PDF',
    rendering: `Rendering page ${clamp(done)} of ${pages}`,
    embedding: `Reading page ${clamp(done - pages)} of ${pages}`,
    indexing: `Indexing ${pages} pages`,
    completed: `Done: ${pages} pages`,
    failed: 'Failed',
    cancelled: 'Cancelled',
  }[task.state] || task.state;
}

export function Progress({ file, task }) {
  if (DONE.has(file.status)) return null;
  if (!task) return html`<span class="muted">Waiting for its progress…</span>`;
  const text = progressText(task);
  return html`<div class="progress">
    <progress max=${task.total || 1} value=${task.processed || 0} aria-label=${`${file.filename}: ${text}`}></progress>
    <span class="muted">${text}${task.eta_seconds != null && !DONE.has(task.state) ? ` · ${formatEta(task.eta_seconds)}` : ''}</span>
  </div>`;
}

export function Status({ file }) {
  const text = { completed: 'Ready', failed: 'Failed', cancelled: 'Cancelled', queued: 'Queued',
    processing: 'Processing' }[file.status] || file.status;
  return html`<span class=${`status status-${file.status}`}>${text}</span>
    ${file.status === 'failed' && file.error ? html`<span class="error-inline">${file.error}</span>` : null}`;
}

function FilePages({ file, onClose }) {
  const [open, setOpen] = useState(null);
  const pages = Array.from({ length: file.page_count }, (_, i) => ({
    file_id: file.file_id, filename: file.filename, page_number: i + 1,
  }));
  return html`<${Dialog} title=${`${file.filename}: ${plural(file.page_count, 'page')}`} onClose=${onClose} wide>
    ${pages.length === 0 ? html`<p class="empty">This file has no pages yet.</p>`
      : html`<div class="page-grid">${pages.map((p) => html`<${PageCard} hit=${p} onOpen=${setOpen} />`)}</div>`}
    ${open && html`<${PageViewer} hit=${open} onClose=${() => setOpen(null)} />`}
  <//>`;
}

export function KnowledgeBasePage({ id }) {
  const [kb, setKb] = useState(null);
  const [files, setFiles] = useState(null);
  const [tasks, setTasks] = useState({});
  const [error, setError] = useState(null);
  const [uploading, setUploading] = useState(null);
  const [dragging, setDragging] = useState(false);
  const [deleting, setDeleting] = useState(null);
  const [viewing, setViewing] = useState(null);
  const [renaming, setRenaming] = useState(false);
  const followed = useRef(new Set());
  const aborter = useRef(new AbortController());
  const picker = useRef(null);

  const loadFiles = () => list(`knowledge-bases/${id}/files/`).then(setFiles, setError);
  const loadKb = () => get(`knowledge-bases/${id}/`).then(setKb, setError);
  useEffect(() => {
    loadKb();
    loadFiles();
    return () => aborter.current.abort();
  }, [id]);

  // Every file still being ingested gets its task's live progress; when it ends the list is read again.
  useEffect(() => {
    for (const file of files || []) {
      if (DONE.has(file.status) || !file.task_id || followed.current.has(file.task_id)) continue;
      followed.current.add(file.task_id);
      followTask(file.task_id, (data) => setTasks((t) => ({ ...t, [file.task_id]: data })), aborter.current.signal)
        .catch((e) => { if (e.name !== 'AbortError') setError(e); })
        .finally(() => { if (!aborter.current.signal.aborted) { loadFiles(); loadKb(); } });
    }
  }, [files]);

  const send = async (chosen) => {
    if (!chosen.length) return;
    setError(null);
    setUploading({ names: chosen.map((f) => f.name), fraction: 0 });
    try {
      await upload(`knowledge-bases/${id}/files/`, chosen, (fraction) => setUploading((u) => ({ ...u, fraction })));
      await loadFiles();
      await loadKb();
    } catch (e) { setError(e); } finally { setUploading(null); }
  };

  const onDrop = (event) => {
    event.preventDefault();
    setDragging(false);
    send([...event.dataTransfer.files]);
  };

  const removeFile = async () => {
    const file = deleting;
    setDeleting(null);
    try { await del(`files/${file.file_id}/`); await loadFiles(); await loadKb(); } catch (e) { setError(e); }
  };

  const rename = async (event) => {
    event.preventDefault();
    const name = new FormData(event.currentTarget).get('name').trim();
    try { setKb(await patch(`knowledge-bases/${id}/`, { knowledge_base_name: name })); setRenaming(false); }
    catch (e) { setError(e); }
  };

  return html`<section class="page">
    <p><a href="/knowledge-bases">← Knowledge bases</a></p>
    ${renaming
      ? html`<form class="row" onSubmit=${rename}>
          <label class="grow">Name<input name="name" value=${kb && kb.knowledge_base_name} required maxlength="200" /></label>
          <button type="submit" class="primary">Save</button>
          <button type="button" onClick=${() => setRenaming(false)}>Cancel</button></form>`
      : html`<div class="row"><h1 class="grow">${kb ? kb.knowledge_base_name : 'Knowledge base'}</h1>
          <button type="button" disabled=${!kb} onClick=${() => setRenaming(true)}>Rename</button>
          <button type="button" onClick=${() => navigate(`/chat?kb=${id}`)}>Chat with it</button></div>`}
    ${kb && html`<p class="meta">${plural(kb.file_count, 'file')} · ${plural(kb.page_count, 'page')} · created ${formatDate(kb.created_at)}</p>`}

    <div class=${`dropzone ${dragging ? 'over' : ''}`} onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
      onDragLeave=${() => setDragging(false)} onDrop=${onDrop}>
      <p>Drop files here, or</p>
      <button type="button" class="primary" onClick=${() => picker.current.click()}>Choose files…</button>
      <input ref=${picker} type="file" multiple hidden aria-label="Files to upload"
        onChange=${(e) => { send([...e.target.files]); e.target.value = ''; }} />
      <p class="hint">PDF, Word, PowerPoint, Excel and images. Each page becomes searchable once it is processed.</p>
      ${uploading && html`<div class="progress" role="status">
        <progress max="1" value=${uploading.fraction} aria-label="Upload progress"></progress>
        <span>Uploading ${uploading.names.join(', ')}… ${Math.round(uploading.fraction * 100)}%</span></div>`}
    </div>
    <${ErrorText} error=${error} />

    ${files === null ? html`<p role="status">Loading files…</p>`
      : files.length === 0 ? html`<p class="empty">No files yet. Drop some above to start.</p>`
      : html`<div class="table-wrap"><table>
        <caption class="sr-only">Files in this knowledge base</caption>
        <thead><tr><th scope="col">File</th><th scope="col">Status</th><th scope="col">Pages</th>
          <th scope="col">Size</th><th scope="col">Added</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${files.map((file) => html`<tr key=${file.file_id} data-file=${file.filename}>
          <th scope="row"><button type="button" class="link" aria-label=${`Show the pages of ${file.filename}`}
            onClick=${() => setViewing(file)} disabled=${!file.page_count}>${file.filename}</button></th>
          <td><${Status} file=${file} /><${Progress} file=${file} task=${tasks[file.task_id]} /></td>
          <td>${file.page_count}</td><td>${formatSize(file.size)}</td><td>${formatDate(file.created_at)}</td>
          <td><button type="button" class="danger small" aria-label=${`Delete ${file.filename}`}
            onClick=${() => setDeleting(file)}>Delete</button></td>
        </tr>`)}</tbody></table></div>`}
    ${deleting && html`<${Confirm} title="Delete file" message=${`Move “${deleting.filename}” to the trash? Its pages are no longer searched or cited; you can restore it from the Trash for a few days.`}
      action="Delete" onConfirm=${removeFile} onClose=${() => setDeleting(null)} />`}
    ${viewing && html`<${FilePages} file=${viewing} onClose=${() => setViewing(null)} />`}
  </section>`;
}
