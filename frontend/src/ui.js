// Small shared pieces: error and status messages, the confirm dialog, the page image viewer, sizes and dates.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';

import { raw } from './api.js';

// A signed image URL lives 15 minutes; a stored citation's may have expired. Then the page is read through the
// header-authenticated route and shown from a blob: URL.
function PageImage({ hit, size, alt, className }) {
  const [src, setSrc] = useState(size === 'thumb' ? hit.thumbnail_url || hit.image_url : hit.image_url);
  const [failed, setFailed] = useState(false);
  useEffect(() => () => { if (src && src.startsWith('blob:')) URL.revokeObjectURL(src); }, [src]);
  useEffect(() => { if (!src) fallback(); }, []);
  const fallback = async () => {
    if (failed || (src && src.startsWith('blob:'))) return;
    setFailed(true);
    try {
      const response = await raw(`files/${hit.file_id}/pages/${hit.page_number}/image?size=${size}`);
      setSrc(URL.createObjectURL(await response.blob()));
    } catch { /* the alt text stays */ }
  };
  if (!src) return html`<span class=${`img-wait ${className || ''}`} role="img" aria-label=${alt}></span>`;
  return html`<img class=${className} src=${src} alt=${alt} loading="lazy" onError=${fallback} />`;
}

export const ErrorText = ({ error }) =>
  error ? html`<p class="error" role="alert">${error.message || String(error)}</p>` : null;

export function formatSize(bytes) {
  if (bytes == null) return '—';
  const units = ['B', 'KB', 'MB', 'GB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// "1 file", "2 files".
export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

export const formatDate = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

export function formatEta(seconds) {
  if (seconds == null) return '';
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s left`;
  return `about ${Math.round(seconds / 60)} min left`;
}

// A modal <dialog>: focus moves into it, Escape closes it, focus returns to the opener.
export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement;
    dialog.showModal();
    return () => { if (opener && opener.focus) opener.focus(); };
  }, []);
  return html`<dialog ref=${ref} class=${wide ? 'wide' : ''} aria-label=${title}
      onCancel=${(e) => { e.preventDefault(); onClose(); }}>
    <header class="dialog-head"><h2>${title}</h2>
      <button type="button" class="icon" aria-label="Close" onClick=${onClose}>×</button></header>
    ${children}
  </dialog>`;
}

export function Confirm({ title, message, action, onConfirm, onClose }) {
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <p>${message}</p>
    <div class="row end">
      <button type="button" onClick=${onClose}>Cancel</button>
      <button type="button" class="danger" onClick=${onConfirm}>${action}</button>
    </div>
  <//>`;
}

// A cited page: thumbnail with file name and page number; activating it opens the page image large.
export { PageImage };

export function PageCard({ hit, onOpen }) {
  const label = `${hit.filename}, page ${hit.page_number}`;
  return html`<figure class="page-card">
    <button type="button" class="thumb" aria-label=${`Open ${label}`} onClick=${() => onOpen(hit)}>
      <${PageImage} hit=${hit} size="thumb" alt=${`Thumbnail of ${label}`} />
    </button>
    <figcaption><span class="fname">${hit.filename}</span> · p. ${hit.page_number}
      ${hit.snippet ? html`<span class="snippet">${hit.snippet}</span>` : null}</figcaption>
  </figure>`;
}

export function PageViewer({ hit, onClose }) {
  return html`<${Dialog} title=${`${hit.filename}, page ${hit.page_number}`} onClose=${onClose} wide>
    <${PageImage} hit=${hit} size="full" className="page-large" alt=${`Page ${hit.page_number} of ${hit.filename}`} />
  <//>`;
}
