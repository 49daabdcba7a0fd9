// Runs node's test runner over compiled test files of one tier.
// `unit` = everything under dist/test except dist/test/interop; `interop` = dist/test/interop.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const tier = process.argv[2] ?? 'unit';
const root = tier === 'interop' ? 'dist/test/interop' : 'dist/test';
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (tier === 'unit' && p === join('dist', 'test', 'interop')) continue;
      walk(p);
    } else if (name.endsWith('.test.js')) files.push(p);
  }
})(root);
const only = process.argv.slice(3);
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
