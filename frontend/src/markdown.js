// Model output is untrusted: Markdown is rendered, then sanitised (no script, no handlers, no images or frames
// that would reach another host), and links open in a new tab without the opener.
import DOMPurify from 'dompurify';
import { marked } from 'marked';

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// HTML written in the model's answer is shown as text, never parsed: the sanitiser below only ever sees the
// Markdown's own tags (and Chrome logs no CSP noise for handlers in an inert parse).
marked.use({ gfm: true, breaks: true, renderer: { html: (token) => escapeHtml(token.text) } });

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

export function renderMarkdown(text) {
  const html = marked.parse(text || '', { async: false });
  return DOMPurify.sanitize(html, {
    FORBID_TAGS: ['img', 'style', 'iframe', 'form', 'input', 'button', 'svg', 'math', 'video', 'audio'],
    FORBID_ATTR: ['style'],
  });
}
