/**
 * The page's files, served from the package itself: the page (src/serve/page/, which the
 * compiler does not copy to dist/, so it is found from the package root) and uPlot from
 * node_modules. Nothing is fetched from the internet, by fur or by the page.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset { type: string; body: Buffer }

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
};

function pageDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    const candidate = existsSync(join(dir, 'page', 'index.html')) ? join(dir, 'page') : join(dir, 'src', 'serve', 'page');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`fur: the live view's page (src/serve/page) is missing from the package above ${here}`);
  }
}

let loaded: Map<string, Asset> | undefined;

/** name → file, read once */
export function assets(): Map<string, Asset> {
  if (loaded) return loaded;
  const dir = pageDir();
  const require = createRequire(import.meta.url);
  const files: [string, string][] = [
    ['index.html', join(dir, 'index.html')],
    ['page.js', join(dir, 'page.js')],
    ['page.css', join(dir, 'page.css')],
    ['uPlot.js', require.resolve('uplot/dist/uPlot.iife.min.js')],
    ['uPlot.css', require.resolve('uplot/dist/uPlot.min.css')],
  ];
  loaded = new Map(files.map(([name, path]) => [name, { type: TYPES[name.slice(name.lastIndexOf('.'))]!, body: readFileSync(path) }]));
  return loaded;
}
