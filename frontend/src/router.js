// A small history router: client-side paths, links that do not reload the page.
import { useEffect, useState } from 'preact/hooks';

const subscribers = new Set();

export function navigate(to, { replace = false } = {}) {
  if (to === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState']({}, '', to);
  subscribers.forEach((fn) => fn());
}

window.addEventListener('popstate', () => subscribers.forEach((fn) => fn()));

export function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    subscribers.add(update);
    return () => subscribers.delete(update);
  }, []);
  return path;
}

// Same-origin links without a modifier key go through the router.
export function interceptLinks(event) {
  const link = event.target.closest && event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

export function match(pattern, path) {
  const names = [];
  const re = new RegExp('^' + pattern.replace(/:(\w+)/g, (_, n) => { names.push(n); return '([^/]+)'; }) + '/?$');
  const m = path.match(re);
  if (!m) return null;
  return Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
}
