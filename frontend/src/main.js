import './style.css';

import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { logout, onAuthChange, restoreSession, signedIn } from './api.js';
import { AccountPage } from './pages/account.js';
import { AuthPage } from './pages/auth.js';
import { ChatPage } from './pages/chat.js';
import { KnowledgeBasePage } from './pages/knowledge-base.js';
import { KnowledgeBasesPage } from './pages/knowledge-bases.js';
import { ModelsPage } from './pages/models.js';
import { SearchPage } from './pages/search.js';
import { TrashPage } from './pages/trash.js';
import { WorkflowPage } from './pages/workflow.js';
import { RunPage } from './pages/workflow-run.js';
import { WorkflowsPage } from './pages/workflows.js';
import { interceptLinks, match, navigate, usePath } from './router.js';

const NAV = [
  ['/knowledge-bases', 'Knowledge bases'],
  ['/chat', 'Chat'],
  ['/search', 'Search'],
  ['/workflows', 'Workflows'],
  ['/models', 'Models'],
  ['/trash', 'Trash'],
  ['/account', 'Account'],
];

const ROUTES = [
  ['/knowledge-bases/:id', (p) => html`<${KnowledgeBasePage} key=${p.id} id=${p.id} />`],
  ['/knowledge-bases', () => html`<${KnowledgeBasesPage} />`],
  ['/chat/:id', (p) => html`<${ChatPage} id=${p.id} />`],
  ['/chat', () => html`<${ChatPage} />`],
  ['/search', () => html`<${SearchPage} />`],
  ['/workflows/:id/runs/:run', (p) => html`<${RunPage} key=${p.run} workflowId=${p.id} runId=${p.run} />`],
  ['/workflows/:id', (p) => html`<${WorkflowPage} id=${p.id} />`],
  ['/workflows', () => html`<${WorkflowsPage} />`],
  ['/models', () => html`<${ModelsPage} />`],
  ['/trash', () => html`<${TrashPage} />`],
  ['/account', () => html`<${AccountPage} />`],
];

function Page({ path }) {
  for (const [pattern, view] of ROUTES) {
    const params = match(pattern, path);
    if (params) return view(params);
  }
  return html`<section class="page"><h1>Page not found</h1>
    <p>There is nothing at ${path}. <a href="/knowledge-bases">Go to your knowledge bases</a>.</p></section>`;
}

function App() {
  const path = usePath();
  const [ready, setReady] = useState(false);
  const [authed, setAuthed] = useState(signedIn());
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => {
    const off = onAuthChange(setAuthed);
    restoreSession().finally(() => setReady(true));
    return off;
  }, []);
  useEffect(() => {
    if (!ready) return;
    if (!authed && path !== '/login' && path !== '/register') {
      navigate(`/login?next=${encodeURIComponent(path === '/' ? '/knowledge-bases' : path)}`, { replace: true });
    } else if (authed && (path === '/' || path === '/login' || path === '/register')) {
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/knowledge-bases', { replace: true });
    }
  }, [ready, authed, path]);
  useEffect(() => setMenuOpen(false), [path]);

  if (!ready) return html`<p class="boot" role="status">Loading LAYRA…</p>`;
  if (!authed) return html`<${AuthPage} mode=${path === '/register' ? 'register' : 'login'} />`;
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="/knowledge-bases">LAYRA</a>
      <button type="button" class="menu-toggle" aria-expanded=${menuOpen} aria-controls="nav"
        onClick=${() => setMenuOpen(!menuOpen)}>Menu</button>
      <nav id="nav" aria-label="Main" class=${menuOpen ? 'open' : ''}>
        ${NAV.map(([href, label]) => html`<a href=${href}
            aria-current=${path.startsWith(href) ? 'page' : undefined}>${label}</a>`)}
        <button type="button" class="link" onClick=${() => logout().then(() => navigate('/login'))}>Sign out</button>
      </nav>
    </header>
    <main id="main" tabindex="-1"><${Page} path=${path} /></main>
  </div>`;
}

document.body.addEventListener('click', interceptLinks);
render(html`<${App} />`, document.getElementById('app'));
