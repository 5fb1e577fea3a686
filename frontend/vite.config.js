import { defineConfig } from 'vite';

// Built files only: no inline script or style (the server's Content-Security-Policy forbids both), and no
// request to any other host at run time.
export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    emptyOutDir: true,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
});
