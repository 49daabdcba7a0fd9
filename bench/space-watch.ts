/**
 * What a plain `fur watch` with default settings (Fletcher-32 on) stores, against h5repack's copy
 * of the same file (issue 15, "No wasted space"): `npx tsc -p tsconfig.json && node
 * dist/bench/space-watch.js [--frames 60] [--fps 10] [--shape 256,256]`. A simulated camera
 * writes npy frames (uint16) into a folder, `fur watch DIR file://…/run.h5 --stop-file
 * capture.done` uploads them with nothing else set, and the file is measured with h5stat -S
 * (Debian's hdf5-tools) and compared with `h5repack` of it. Prints one markdown table row.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runCamera } from '../src/source/camera.js';
import { FUR_BIN } from '../harness/repo.js';
import { run } from '../harness/run.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '60' }, fps: { type: 'string', default: '10' }, shape: { type: 'string', default: '256,256' } } });
const frames = Number(values.frames);
const fps = Number(values.fps);
const shape = values.shape.split(',').map(Number);
const work = mkdtempSync(join(tmpdir(), 'fur-space-watch-'));
try {
  const cam = join(work, 'camera');
  const file = join(work, 'run.h5');
  mkdirSync(cam);
  const watch = run(process.execPath, [FUR_BIN, 'watch', cam, pathToFileURL(file).href, '--stop-file', 'capture.done'], { timeoutMs: 600_000 });
  const camera = await runCamera({ dir: cam, format: 'npy', dtype: 'uint16', shape, frames, fps, seed: 1 });
  writeFileSync(join(cam, 'capture.done'), '');
  const w = await watch;
  if (w.code !== 0) throw new Error(`fur watch exited ${w.code}: ${w.stderr}`);
  const stat = await run('/usr/bin/h5stat', ['-S', file]);
  const num = (label: string) => Number(new RegExp(`${label}: (\\d+) bytes`).exec(stat.stdout.toString())?.[1]);
  const repacked = join(work, 'repacked.h5');
  const r = await run('/usr/bin/h5repack', [file, repacked]);
  if (r.code !== 0) throw new Error(`h5repack: ${r.stderr}`);
  const data = camera.frames * shape.reduce((a, b) => a * b, 1) * 2;
  const size = statSync(file).size;
  const packed = statSync(repacked).size;
  console.log('| frames | frame bytes | file | file / frames | h5repack | file / h5repack | h5stat raw data | h5stat metadata | h5stat unaccounted |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  console.log(`| ${camera.frames} of ${shape.join('×')} uint16 at ${fps} fps | ${data} | ${size} | ${(size / data).toFixed(3)} | ${packed} | ${(size / packed).toFixed(3)} | ${num('Raw data')} | ${num('File metadata')} | ${num('Unaccounted space')} |`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
