/**
 * Two `fur watch` processes started together on one destination, as an operator restarting a
 * "hung" capture in a second terminal does: exactly one may write. The refused one exits 1 with
 * one line naming the holder and --take-over, having written and deleted nothing; the other
 * stores every frame of its camera (h5py reads them back equal), deletes only what it committed,
 * and releases its lease.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { sortSequence } from '../../../src/source/sequence.js';
import { FUR_BIN, localFrames, writeFrames, type Method } from '../../pipeline/helpers.js';
import { assertFiles, assertFrames, pattern, type Cam } from '../ftps-s3-check.js';
import { h5pyFrames } from './h5py.js';

export interface TwoRuns {
  method: Method;
  /** the destination both runs are given */
  url: string;
  /** connection flags (identity, endpoint, CA file…) */
  flags: string[];
  env?: NodeJS.ProcessEnv;
  /** scratch folder for the cameras */
  work: string;
  /** the two cameras (different seeds, so whose frames were stored is plain) */
  cams: [Cam, Cam];
  /** the stored append file or folder, on this machine (S3: downloaded); called after the winner ended */
  stored(): Promise<string>;
  /** names of lease records or probes still at the destination (must be none once the winner ended) */
  leftovers(): Promise<string[]>;
}

function fur(args: string[], env: NodeJS.ProcessEnv | undefined): { pid: number; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [FUR_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  return { pid: child.pid!, exited: new Promise((resolve) => child.on('close', (code) => { clearTimeout(timer); resolve(code); })), stderr: () => err };
}

export async function twoRunsOneDestination(t: TwoRuns): Promise<void> {
  const { cams, method } = t;
  const dirs = cams.map(() => mkdtempSync(join(t.work, 'camera-')));
  await Promise.all(cams.map((c, i) => writeFrames(dirs[i]!, c, 0, c.frames)));
  // watches that end on a stop file: whichever holds the lease still holds it when the other asks
  const runs = dirs.map((dir) => fur(['watch', dir, t.url, '--method', method, '--batch', '8', '--delete-source',
    '--pattern', pattern(cams[0]), '--completion', 'rename', '--stop-file', 'capture.done', ...t.flags], t.env));
  const first = await Promise.race(runs.map((r, i) => r.exited.then((code) => ({ i, code }))));
  const [loser, winner] = [first.i, 1 - first.i];
  assert.equal(first.code, 1, `the first to end was refused: ${runs[loser]!.stderr()}`);
  const message = runs[loser]!.stderr().trim().split('\n').at(-1)!;
  assert.match(message, new RegExp(`is in use by another fur run \\(host ${hostname()}, pid ${runs[winner]!.pid}, started .* UTC, renewed \\d+ s ago\\);.*--take-over$`));
  for (const dir of dirs) writeFileSync(join(dir, 'capture.done'), '');
  assert.equal(await runs[winner]!.exited, 0, runs[winner]!.stderr());

  const won = cams[winner]!;
  const stored = await t.stored();
  if (method === 'files') {
    const names = sortSequence(readdirSync(stored).filter((n) => !n.startsWith('.') && !n.endsWith('.kerchunk.json')));
    assertFiles(names, (n) => readFileSync(join(stored, n)), won);
  } else {
    const files = method === 'append' ? [stored] : sortSequence(readdirSync(stored).filter((n) => n.endsWith('.h5'))).map((n) => join(stored, n));
    assertFrames(await h5pyFrames(files), won);
  }
  assert.deepEqual(await localFrames(dirs[winner]!), [], 'the writer deleted what it committed');
  assert.equal((await localFrames(dirs[loser]!)).length, cams[loser]!.frames, 'the refused run deleted nothing');
  assert.deepEqual(await t.leftovers(), [], 'the lease (and any probe) is released');
}
