/**
 * What a slow-login FTPS server costs fur: `fur verify` (with and without the sources) and the
 * clean-up a run does after a crash, timed against a server of harness/ftps-servers.ts
 * (default pure-ftpd as Debian sets it up: argon2id logins of seconds, failed CWD throttled).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/ftps-field.js [--server pure-ftpd] [--rounds 3]
 *     [--frames 200] [--batch 20] [--leftovers 20] [--fur bin/fur.js,/other/checkout/bin/fur.js]
 *
 * One capture (434×434×3 uint8 TIFF frames) is uploaded once with `batches`; then, for each fur
 * given (so two builds can be compared on the same server and data), in rounds with the order
 * rotated: `verify SRC DEST`, `verify DEST`, and a run of `upload` on the finished destination
 * after `--leftovers` temporaries (a batch file's and a sidecar's, as a killed run leaves them)
 * were put beside the batch files — it reads what is stored and removes them. Reported: wall-clock
 * seconds (medians), and for the clean-up how many lines fur printed while it ran.
 * Needs root and what the interop tier needs (see .ci/run).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runCamera } from '../src/source/camera.js';
import { FUR_BIN } from '../harness/repo.js';
import { run } from '../harness/run.js';
import { FTPS_SERVERS, startFtpsServer, type FtpsServerName } from '../harness/ftps-servers.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: 'pure-ftpd' },
    rounds: { type: 'string', default: '3' },
    frames: { type: 'string', default: '200' },
    batch: { type: 'string', default: '20' },
    leftovers: { type: 'string', default: '20' },
    fur: { type: 'string', default: FUR_BIN },
  },
});
const name = values.server as FtpsServerName;
if (!FTPS_SERVERS.includes(name)) throw new Error(`--server: one of ${FTPS_SERVERS.join(', ')}`);
const furs = values.fur.split(',').map((f) => resolve(f));
const frames = Number(values.frames);
const leftovers = Number(values.leftovers);

const work = mkdtempSync(join(tmpdir(), 'fur-bench-ftps-'));
const server = await startFtpsServer(name);
try {
  const src = join(work, 'camera');
  mkdirSync(src);
  await runCamera({ dir: src, frames, format: 'tiff', dtype: 'uint8', shape: [434, 434, 3], seed: 5 });
  const dir = join(server.root, 'run');
  const dest = server.url(dir);
  const common = ['--method', 'batches', '--pattern', 'frame*.tif', ...server.flags];
  const up = await run(process.execPath, [FUR_BIN, 'upload', src, dest, '--batch', values.batch, ...common], { timeoutMs: 1_800_000 });
  if (up.code !== 0) throw new Error(`the upload that prepares the destination failed:\n${up.stderr}`);
  const batchFiles = readdirSync(dir).filter((n) => n.endsWith('.h5'));
  console.log(`${name}: ${frames} frames in ${batchFiles.length} batch files; fur: ${furs.join(', ')}`);

  const cases: Record<string, (fur: string) => Promise<{ seconds: number; lines?: number }>> = {
    'verify SRC DEST': (fur) => timed(fur, ['verify', src, dest, ...common]),
    'verify DEST': (fur) => timed(fur, ['verify', dest, ...common]),
    [`clean-up of ${leftovers} leftovers`]: async (fur) => {
      // what a run killed while writing leaves: batch files and sidecars under temporary names
      for (let i = 0; i < leftovers; i++) {
        const b = batchFiles[i % batchFiles.length]!;
        if (i % 2 === 0) copyFileSync(join(dir, b), join(dir, `x${i}-${b}.fur-partial`));
        else writeFileSync(join(dir, `.x${i}-${b}.kerchunk.json.fur-partial`), '{}');
      }
      const r = await timed(fur, ['upload', src, dest, '--batch', values.batch, ...common]);
      const left = readdirSync(dir).filter((n) => n.endsWith('.fur-partial'));
      if (left.length) throw new Error(`${fur}: ${left.length} leftovers not removed`);
      return r;
    },
  };
  const results: Record<string, Record<string, number[]>> = {};
  const printed: Record<string, Record<string, number[]>> = {};
  for (let round = 0; round < Number(values.rounds); round++) {
    const order = furs.map((_, i) => furs[(i + round) % furs.length]!);
    for (const [what, fn] of Object.entries(cases)) {
      for (const fur of order) {
        const { seconds, lines } = await fn(fur);
        ((results[what] ??= {})[fur] ??= []).push(seconds);
        if (lines !== undefined) ((printed[what] ??= {})[fur] ??= []).push(lines);
        console.log(`round ${round + 1}: ${what}, ${fur}: ${seconds.toFixed(1)} s${lines !== undefined ? `, ${lines} lines printed` : ''}`);
      }
    }
  }
  console.log(`\n| ${name}, ${frames} frames, ${batchFiles.length} batch files | ${furs.join(' | ')} |\n|---|${furs.map(() => '---:').join('|')}|`);
  for (const what of Object.keys(cases)) {
    console.log(`| ${what} (s, median of ${values.rounds}) | ${furs.map((f) => median(results[what]![f]!).toFixed(1)).join(' | ')} |`);
  }
} finally {
  await server.dispose();
  rmSync(work, { recursive: true, force: true });
}

async function timed(fur: string, args: string[]): Promise<{ seconds: number; lines: number }> {
  const t0 = performance.now();
  const r = await run(process.execPath, [fur, ...args], { timeoutMs: 1_800_000 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`${fur} ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return { seconds, lines: r.stderr.split('\n').filter((l) => l.trim()).length };
}
