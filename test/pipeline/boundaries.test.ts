/**
 * Where batches begin and end, and how a run ends: partial batches, a batch closed by
 * --batch-seconds, --count, the stop file, --idle, and an abort that drains what is queued.
 * Outcomes are checked by what the destination holds, never by how long something took.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { connect } from '../../src/cli/connect.js';
import { decodeSuperblock } from '../../src/hdf5/superblock.js';
import { DEFAULTS, type PipelineOptions } from '../../src/pipeline/options.js';
import { Progress, type RunEvent } from '../../src/pipeline/progress.js';
import { run, type RunSpec } from '../../src/pipeline/run.js';
import type { Destination } from '../../src/transport/destination.js';
import { cameraFileName, runCamera } from '../../src/source/camera.js';
import { h5wasmRead, dataset } from '../support/h5wasm.js';
import {
  assertCapture, cli, localFrames, METHODS, openDest, PASSWORD_ENV, readFlags, readStored, scratch, until, watchFlags,
  writeFrames, type Capture, type Dest, type Method,
} from './helpers.js';

/**
 * Opens the destination the way the CLI does and runs the pipeline, collecting its events.
 * `intercept` may wrap the opened destination's methods first (to watch or refuse requests).
 */
async function runTo(dest: Dest, method: Method, name: string, spec: Partial<RunSpec> & { sourceDir: string }, options: Partial<PipelineOptions> = {}, events: RunEvent[] = [], intercept?: (d: Destination) => void) {
  const knownHosts = dest.flags[dest.flags.indexOf('--known-hosts') + 1];
  const { dest: d, path } = await connect(dest.url(method, name), method, dest.kind === 'sftp' ? { passwordEnv: PASSWORD_ENV, knownHosts } : {});
  intercept?.(d);
  try {
    return await run({
      pattern: '*', dest: d, destPath: path, progress: new Progress((e) => events.push(e), { sampleMs: 60_000 }),
      ...spec, options: { ...DEFAULTS, method, ...options },
    });
  } finally {
    await d.close();
  }
}

const commits = (events: RunEvent[]) => events.filter((e): e is Extract<RunEvent, { type: 'commit' }> => e.type === 'commit');
const done = (events: RunEvent[]) => events.find((e): e is Extract<RunEvent, { type: 'done' }> => e.type === 'done')!;

describe('batch boundaries', () => {
  for (const method of ['append', 'batches'] as const) {
    test(`${method}: 20 frames in batches of 6 → commits of 6, 6, 6 and a partial 2`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [8, 8, 3], seed: 21, frames: 20 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('sftp', t);
      const events: RunEvent[] = [];
      const camera = runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames, fps: 500, write: 'rename', stopFile: 'STOP' });
      const summary = await runTo(dest, method, 'b', { sourceDir: cam, watch: { completion: 'rename', stopFile: 'STOP' } },
        { batchFrames: 6, batchSeconds: 600, deleteSource: true }, events);
      await camera;
      assert.deepEqual(commits(events).map((e) => e.frames), [6, 6, 6, 2]);
      assert.deepEqual(commits(events).map((e) => e.batch), [0, 1, 2, 3]);
      assert.equal(summary.endReason, 'stop-file');
      const stored = await readStored(dest, method, 'b');
      assertCapture(stored, c);
      if (method === 'batches') assert.deepEqual(stored.docs.map((d) => dataset(d, '/data').shape![0]), [6, 6, 6, 2]);
      assert.deepEqual(await localFrames(cam), []);
    });
  }

  test('a batch holds whole files: 4-page files in batches of 6 commit 8 frames at a time', async (t) => {
    const c: Capture = { format: 'tiff', dtype: 'uint16', shape: [6, 5], seed: 22, frames: 20, framesPerFile: 4 };
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    await runCamera({ dir: cam, format: 'tiff', dtype: 'uint16', shape: c.shape, seed: c.seed, frames: c.frames, framesPerFile: 4 });
    const events: RunEvent[] = [];
    await runTo(dest, 'append', 'pages', { sourceDir: cam }, { batchFrames: 6, deleteSource: true }, events);
    assert.deepEqual(commits(events).map((e) => [e.files, e.frames]), [[2, 8], [2, 8], [1, 4]]);
    assertCapture(await readStored(dest, 'append', 'pages'), c);
    assert.deepEqual(await localFrames(cam), []);
  });

  for (const frames of [12, 10]) {
    test(`append: the capture's last batch (${frames} frames in batches of 6) states the final EOF; closing commits nothing more`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [6, 5], seed: 24, frames };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('file', t);
      await runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames });
      // every superblock the run writes (either handle), and which commits had been reported by then
      const superblocks: { eof: number; afterCommits: number }[] = [];
      const events: RunEvent[] = [];
      await runTo(dest, 'append', 'last', { sourceDir: cam }, { batchFrames: 6 }, events, (d) => {
        const openWrite = d.openWrite.bind(d);
        d.openWrite = async (p, o) => {
          const f = await openWrite(p, o);
          if (!p.endsWith('.h5') && !p.endsWith('.h5.fur-partial')) return f; // the sidecar
          const write = f.write.bind(f);
          f.write = (offset, data) => {
            if (offset === 0 && data.length >= 48) superblocks.push({ eof: decodeSuperblock(data).eof, afterCommits: commits(events).length });
            return write(offset, data);
          };
          return f;
        };
      });
      assert.deepEqual(commits(events).map((e) => e.frames), frames === 12 ? [6, 6] : [6, 4]);
      const size = (await stat(dest.local('append', 'last'))).size;
      const last = superblocks.at(-1)!;
      assert.equal(last.eof, size, 'the last superblock states the file\'s final length');
      assert.equal(last.afterCommits, 1, 'written by the last batch\'s commit, none at close');
      assert.ok(superblocks.slice(0, -1).every((s) => s.eof > size), 'earlier ones kept headroom past the data');
      assertCapture(await readStored(dest, 'append', 'last'), c);
    });
  }

  test('append: the last commit\'s sidecar is written while that commit publishes, and named once it is published', async (t) => {
    const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [6, 5], seed: 26, frames: 12 };
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    await runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames });
    // the file's barriers (sync calls on either handle) after the superblock stating its final
    // length, counted when the sidecar's temporary is opened and when it is renamed
    let finalSuperblock = false;
    let syncs = 0;
    const sidecar: { opened: number[]; renamed: number[] } = { opened: [], renamed: [] };
    const events: RunEvent[] = [];
    await runTo(dest, 'append', 'staged', { sourceDir: cam }, { batchFrames: 6 }, events, (d) => {
      const openWrite = d.openWrite.bind(d);
      d.openWrite = async (p, o) => {
        if (p.includes('kerchunk')) sidecar.opened.push(syncs);
        const f = await openWrite(p, o);
        if (p.includes('kerchunk')) return f;
        const write = f.write.bind(f);
        f.write = (offset, data) => {
          if (offset === 0 && data.length >= 48 && commits(events).length === 1) finalSuperblock = true;
          return write(offset, data);
        };
        const sync = f.sync!.bind(f);
        f.sync = () => { if (finalSuperblock) syncs++; return sync(); };
        return f;
      };
      const rename = d.rename.bind(d);
      d.rename = async (from, to) => {
        if (from.includes('kerchunk')) sidecar.renamed.push(syncs);
        return rename(from, to);
      };
    });
    assert.deepEqual(commits(events).map((e) => e.frames), [6, 6]);
    // one sidecar per commit; the last one opened before its commit's later barriers were asked
    // for (before: after all of them), renamed after them
    assert.equal(sidecar.opened.length, 2);
    const [opened, renamed] = [sidecar.opened.at(-1)!, sidecar.renamed.at(-1)!];
    assert.ok(opened < renamed, `opened after ${opened} barriers, renamed after ${renamed}`);
    const side = JSON.parse(await readFile(`${dest.local('append', 'staged')}.kerchunk.json`, 'utf8')) as { refs: Record<string, string> };
    assert.deepEqual(JSON.parse(side.refs['entry/data/data/.zarray']!).shape, [12, 6, 5], 'the sidecar describes every frame');
    assertCapture(await readStored(dest, 'append', 'staged'), c);
    assert.deepEqual((await readdir(join(dest.root))).filter((n) => n.includes('fur-partial')), [], 'no temporary is left');
  });

  for (const refusals of [1, Infinity]) {
    test(`append: a sidecar upload that fails ${refusals === 1 ? 'once is written again at close' : 'every time fails the run, after the file is closed whole'}`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [6, 5], seed: 25, frames: 12 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('file', t);
      await runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames });
      let refused = 0;
      const events: RunEvent[] = [];
      const running = runTo(dest, 'append', 'side', { sourceDir: cam }, { batchFrames: 6 }, events, (d) => {
        const openWrite = d.openWrite.bind(d);
        d.openWrite = async (p, o) => {
          if (p.includes('kerchunk') && refused < refusals) {
            refused++;
            throw new Error('sidecar refused (test)');
          }
          return openWrite(p, o);
        };
      });
      if (refusals === 1) await running;
      else await assert.rejects(running, /sidecar refused/);
      // the capture went on after the first refusal: both batches committed, the file trimmed
      assert.deepEqual(commits(events).map((e) => e.frames), [6, 6]);
      const h5 = dest.local('append', 'side');
      const eof = decodeSuperblock(await readFile(h5)).eof;
      assert.equal((await stat(h5)).size, eof, 'closed normally: the headroom is cut');
      assertCapture(await readStored(dest, 'append', 'side'), c);
      if (refusals === 1) {
        const side = JSON.parse(await readFile(`${h5}.kerchunk.json`, 'utf8')) as { refs: Record<string, string> };
        assert.deepEqual(JSON.parse(side.refs['entry/data/data/.zarray']!).shape, [12, 6, 5], 'the sidecar describes every frame');
      }
    });
  }

  for (const method of METHODS) {
    test(`${method}: --batch-seconds commits a partial batch while capture goes on`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [10, 12], seed: 23, frames: 6 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('file', t);
      const events: RunEvent[] = [];
      const running = runTo(dest, method, 'slow', { sourceDir: cam, watch: { completion: 'rename', stopFile: 'STOP' } },
        { batchFrames: 100, batchSeconds: 0.2, deleteSource: true }, events);
      await writeFrames(cam, c, 0, 3);
      // nowhere near 100 frames: only the batch timer can commit these
      await until(() => commits(events).reduce((n, e) => n + e.frames, 0) === 3, 30_000, 'the first 3 frames committed');
      assertCapture(await readStored(dest, method, 'slow'), c, 0, 3);
      await writeFrames(cam, c, 3, 6);
      await writeFile(join(cam, 'STOP'), '');
      const summary = await running;
      assert.equal(summary.frames, 6);
      assert.ok(commits(events).length >= 2, 'the later frames came in a later commit');
      assertCapture(await readStored(dest, method, 'slow'), c);
      assert.deepEqual(await localFrames(cam), []);
    });
  }
});

describe('how a watch ends', () => {
  for (const method of METHODS) {
    test(`${method}: --count 25 of 40 frames stores exactly the first 25 and leaves the rest`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [8, 10, 3], seed: 24, frames: 40 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('sftp', t);
      await runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames, write: 'rename' });
      const r = await cli(['watch', cam, dest.url(method, 'count'), '--method', method, '--count', '25', '--batch', '10', '--delete-source',
        '--completion', 'rename', ...readFlags(c), ...dest.flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.lastLine, /^fur: 25 frames from 25 files, .*\[count\]$/);
      assertCapture(await readStored(dest, method, 'count'), c, 0, 25);
      assert.deepEqual(await localFrames(cam), Array.from({ length: 15 }, (_, k) => cameraFileName(26 + k, 'tiff')));
    });
  }

  test('--idle ends a watch after the camera goes quiet, with every frame stored', async (t) => {
    const c: Capture = { format: 'npy', dtype: 'int32', shape: [7, 9], seed: 25, frames: 10 };
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    const camera = runCamera({ dir: cam, format: 'npy', dtype: 'int32', shape: c.shape, seed: c.seed, frames: c.frames, fps: 100, write: 'rename' });
    const r = await cli(['watch', cam, dest.url('append', 'idle'), '--idle', '1', '--completion', 'rename', '--delete-source', ...readFlags(c)]);
    await camera;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.lastLine, /\[idle\]$/);
    assertCapture(await readStored(dest, 'append', 'idle'), c);
    assert.deepEqual(await localFrames(cam), []);
  });

  test('the stop file ends a watch with the frames written just before it', async (t) => {
    const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [5, 5], seed: 26, frames: 15 };
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    const running = cli(['watch', cam, dest.url('batches', 'stop'), '--method', 'batches', '--batch', '4', '--delete-source', ...readFlags(c), ...watchFlags('END')]);
    // all frames and the stop file at once: the watch must not end before taking them
    await runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames, write: 'rename', stopFile: 'END' });
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.lastLine, /\[stop-file\]$/);
    assertCapture(await readStored(dest, 'batches', 'stop'), c);
    assert.deepEqual(await localFrames(cam), []);
  });

  for (const method of METHODS) {
    test(`${method}: aborting drains what is queued; every stored frame is a committed, deleted source, every other stays`, async (t) => {
      const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [12, 16, 3], seed: 27, frames: 1000 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('sftp', t);
      const stopCamera = new AbortController();
      const camera = runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: c.shape, seed: c.seed, frames: c.frames, fps: 200,
        write: 'rename', signal: stopCamera.signal });
      const abort = new AbortController();
      const events: RunEvent[] = [];
      const running = runTo(dest, method, 'abort', { sourceDir: cam, watch: { completion: 'rename' }, signal: abort.signal },
        { batchFrames: 5, batchSeconds: 600, deleteSource: true }, events);
      await until(() => commits(events).length >= 3, 60_000, 'three commits');
      abort.abort();
      const summary = await running;
      stopCamera.abort();
      const written = (await camera).frames;
      assert.equal(summary.endReason, 'stopped');
      assert.equal(done(events).endReason, 'stopped');
      // three commits: three batches of 5 frames, or three files for the files method
      const atLeast = method === 'files' ? 3 : 15;
      assert.ok(summary.frames >= atLeast && summary.frames <= written, `stored ${summary.frames} of ${written}`);
      const stored = await readStored(dest, method, 'abort');
      assertCapture(stored, { ...c, frames: summary.frames });
      // nothing lost: what is not stored is still on the local disk, and nothing stored is
      const left = await localFrames(cam);
      assert.deepEqual(left, Array.from({ length: written - summary.frames }, (_, k) => cameraFileName(summary.frames + 1 + k, 'tiff')));
    });
  }
});

test('an upload of a finished capture (no watch) stores it all and reports it', async (t) => {
  const c: Capture = { format: 'tiff', dtype: 'float32', shape: [9, 11], seed: 28, frames: 17 };
  const cam = await scratch(t, 'fur-camera-');
  const dest = await openDest('sftp', t);
  await runCamera({ dir: cam, format: 'tiff', dtype: 'float32', shape: c.shape, seed: c.seed, frames: c.frames });
  const r = await cli(['upload', cam, dest.url('append', 'done'), '--batch', '4', ...dest.flags]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.lastLine, /^fur: 17 frames from 17 files, .*\[finished\]$/);
  const doc = await h5wasmRead(dest.local('append', 'done'));
  assert.deepEqual(dataset(doc, '/data').shape, [17, 9, 11]);
  assertCapture(await readStored(dest, 'append', 'done'), c);
  assert.equal((await localFrames(cam)).length, 17);
});
