// The files uploaded into a conversation (its temporary knowledge base): each one's state and live progress.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';

import { list } from '../api.js';
import { DONE, Progress, Status, followTask } from './knowledge-base.js';

export function ConversationFiles({ kbId, version }) {
  const [files, setFiles] = useState([]);
  const [tasks, setTasks] = useState({});
  const followed = useRef(new Set());
  const aborter = useRef(new AbortController());
  const load = () => list(`knowledge-bases/${kbId}/files/`).then(setFiles, () => {});
  useEffect(() => { load(); }, [kbId, version]);
  useEffect(() => () => aborter.current.abort(), []);
  useEffect(() => {
    for (const file of files) {
      if (DONE.has(file.status) || !file.task_id || followed.current.has(file.task_id)) continue;
      followed.current.add(file.task_id);
      followTask(file.task_id, (data) => setTasks((t) => ({ ...t, [file.task_id]: data })), aborter.current.signal)
        .catch(() => {})
        .finally(() => { if (!aborter.current.signal.aborted) load(); });
    }
  }, [files]);
  if (!files.length) return null;
  return html`<section class="conversation-files" aria-label="Files in this conversation">
    <h2 class="sr-only">Files in this conversation</h2>
    <ul class="plain">${files.map((file) => html`<li key=${file.file_id} data-file=${file.filename}>
      <span class="fname">${file.filename}</span> <${Status} file=${file} />
      <${Progress} file=${file} task=${tasks[file.task_id]} /></li>`)}</ul>
  </section>`;
}
