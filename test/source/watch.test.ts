import assert from 'node:assert/strict';
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFurError } from '../../src/errors.js';
import { runCamera } from '../../src/source/camera.js';
import { expectedFrame } from '../../src/source/pattern.js';
import { readFrames } from '../../src/source/readers/index.js';
import { listCompleted, settled, watchFolder, type CompletedFile, type FolderWatch } from '../../src/source/watch.js';
import { sleep, tempDir, until } from './helpers.js';

/** Consumes a watch in the background; `onItem` runs inside the loop, as a pipeline would. */
function collect(w: FolderWatch, onItem?: (f: CompletedFile, all: CompletedFile[]) => void | Promise<void>) {
  const items: CompletedFile[] = [];
  const done = (async () => {
    for await (const f of w) {
      items.push(f);
      await onItem?.(f, items);
    }
  })();
  return { items, done, names: () => items.map((f) => f.name) };
}

test('files already there come first, in sequence order', async (t) => {
  const dir = await tempDir(t);
  for (const n of ['img_10.raw', 'img_2.raw', 'img_1.raw', 'other.txt']) await writeFile(join(dir, n), 'data');
  const w = watchFolder(dir, { pattern: 'img_*.raw', quietMs: 50, rescanMs: 20 });
  const c = collect(w);
  await until(() => c.items.length === 3);
  w.finish();
  await c.done;
  assert.deepEqual(c.names(), ['img_1.raw', 'img_2.raw', 'img_10.raw']);
  assert.ok(c.items.every((f) => f.by === 'quiet' && f.size === 4 && !f.outOfOrder));
  assert.equal(w.endReason, 'finished');
});

test('a file written slowly in pieces is yielded only once quiet, at its full size', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'frame0001.raw');
  let writing = true;
  let yieldedWhileWriting = false;
  const w = watchFolder(dir, { quietMs: 1500, rescanMs: 10 });
  const c = collect(w, () => { if (writing) yieldedWhileWriting = true; });
  await writeFile(file, new Uint8Array(100));
  for (let i = 0; i < 10; i++) {
    await sleep(20);
    await appendFile(file, new Uint8Array(100));
  }
  writing = false;
  await until(() => c.items.length === 1);
  w.stop();
  await c.done;
  assert.equal(yieldedWhileWriting, false);
  assert.equal(c.items[0]!.size, 1100);
  assert.equal(c.items[0]!.by, 'quiet');
});

test('an empty file is not complete by silence alone', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { quietMs: 30, rescanMs: 10 });
  const c = collect(w);
  await writeFile(join(dir, 'frame1.raw'), '');
  await sleep(200);
  assert.equal(c.items.length, 0);
  await appendFile(join(dir, 'frame1.raw'), 'x');
  await until(() => c.items.length === 1);
  w.stop();
  await c.done;
});

test('marker mode: a file waits for its marker, and later files wait behind an earlier one', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { completion: 'marker', rescanMs: 10 });
  const c = collect(w);
  for (const n of [1, 2, 3]) await writeFile(join(dir, `frame${n}.tif`), 'pixels');
  await writeFile(join(dir, 'frame2.tif.done'), '');
  await writeFile(join(dir, 'frame3.tif.done'), '');
  await sleep(200);
  assert.equal(c.items.length, 0, 'frame1 has no marker yet, so nothing may pass it');
  await writeFile(join(dir, 'frame1.tif.done'), '');
  await until(() => c.items.length === 3);
  w.stop();
  await c.done;
  assert.deepEqual(c.names(), ['frame1.tif', 'frame2.tif', 'frame3.tif']);
  assert.ok(c.items.every((f) => f.by === 'marker'));
  assert.equal(c.items[0]!.marker, join(dir, 'frame1.tif.done'));
});

test('rename mode: temporary names are never taken; the final name is complete at once', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { completion: 'rename', rescanMs: 10 });
  const c = collect(w);
  const tmp = join(dir, 'frame000001.tif.tmp');
  await writeFile(tmp, new Uint8Array(10));
  await writeFile(join(dir, '.frame000002.tif'), 'hidden temp');
  await writeFile(join(dir, 'frame000003.tif.part'), 'partial');
  await sleep(100);
  await appendFile(tmp, new Uint8Array(10));
  assert.equal(c.items.length, 0);
  await rename(tmp, join(dir, 'frame000001.tif'));
  await until(() => c.items.length === 1);
  w.finish();
  await c.done;
  assert.deepEqual(c.names(), ['frame000001.tif']);
  assert.equal(c.items[0]!.by, 'rename');
  assert.equal(c.items[0]!.size, 20);
});

test('a stop file finishes the capture: everything present is yielded, the stop file is not', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { quietMs: 60_000, rescanMs: 10, stopFile: 'STOP' });
  const c = collect(w);
  for (const n of [3, 1, 2]) await writeFile(join(dir, `f${n}.npy`), 'x');
  await sleep(50);
  assert.equal(c.items.length, 0, 'a long quiet period holds them');
  await writeFile(join(dir, 'STOP'), '');
  await c.done;
  assert.deepEqual(c.names(), ['f1.npy', 'f2.npy', 'f3.npy']);
  assert.ok(c.items.every((f) => f.by === 'finished'));
  assert.equal(w.endReason, 'stop-file');
});

test('finish() while the consumer holds a file still picks up files written before it', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'img_1.raw'), 'x');
  const w = watchFolder(dir, { completion: 'rename', rescanMs: 60_000, fsEvents: false });
  const c = collect(w, async (f) => {
    if (f.name !== 'img_1.raw') return;
    await writeFile(join(dir, 'img_2.raw'), 'y');
    w.finish();
  });
  await c.done;
  assert.deepEqual(c.names(), ['img_1.raw', 'img_2.raw']);
  assert.equal(w.endReason, 'finished');
});

test('idle timeout ends the watch after the last file', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'a1.raw'), 'x');
  const w = watchFolder(dir, { quietMs: 30, idleMs: 300, rescanMs: 10 });
  const c = collect(w);
  await c.done;
  assert.deepEqual(c.names(), ['a1.raw']);
  assert.equal(w.endReason, 'idle');
});

test('file count ends the watch', async (t) => {
  const dir = await tempDir(t);
  for (const n of [1, 2, 3, 4]) await writeFile(join(dir, `s${n}.raw`), 'x');
  const w = watchFolder(dir, { completion: 'rename', maxFiles: 2 });
  const c = collect(w);
  await c.done;
  assert.deepEqual(c.names(), ['s1.raw', 's2.raw']);
  assert.equal(w.endReason, 'count');
});

test('stop() drains files already complete, leaves incomplete ones, and ends', async (t) => {
  const dir = await tempDir(t);
  for (const n of [1, 2, 3]) {
    await writeFile(join(dir, `k${n}.raw`), 'x');
    await writeFile(join(dir, `k${n}.raw.done`), '');
  }
  await writeFile(join(dir, 'k4.raw'), 'no marker yet');
  const w = watchFolder(dir, { completion: 'marker', rescanMs: 10 });
  const c = collect(w, (_f, all) => { if (all.length === 1) w.stop(); });
  await c.done;
  assert.deepEqual(c.names(), ['k1.raw', 'k2.raw', 'k3.raw']);
  assert.equal(w.endReason, 'stopped');

  const idle = watchFolder(dir, { rescanMs: 60_000 });
  const c2 = collect(idle);
  await sleep(20);
  idle.stop(); // must wake a watch that is waiting
  await c2.done;
  assert.equal(idle.endReason, 'stopped');
});

test('an abort signal stops the watch', async (t) => {
  const dir = await tempDir(t);
  const ac = new AbortController();
  const w = watchFolder(dir, { signal: ac.signal, rescanMs: 60_000 });
  const c = collect(w);
  ac.abort();
  await c.done;
  assert.equal(w.endReason, 'stopped');
});

test('never twice: a yielded file that changes is not yielded again; a late earlier file is flagged', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'img_5.raw'), 'x');
  const w = watchFolder(dir, { completion: 'rename', rescanMs: 10 });
  const c = collect(w);
  await until(() => c.items.length === 1);
  await appendFile(join(dir, 'img_5.raw'), 'more');
  await writeFile(join(dir, 'img_3.raw'), 'late');
  await until(() => c.items.length === 2);
  await sleep(100);
  w.finish();
  await c.done;
  assert.deepEqual(c.names(), ['img_5.raw', 'img_3.raw']);
  assert.equal(c.items[1]!.outOfOrder, true);
});

test('rescans alone find new files when fs events are unavailable', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { completion: 'rename', rescanMs: 20, fsEvents: false, stopFile: 'END' });
  const c = collect(w);
  await sleep(30);
  await writeFile(join(dir, 'p1.raw'), 'x');
  await until(() => c.items.length === 1);
  await writeFile(join(dir, 'END'), '');
  await c.done;
  assert.deepEqual(c.names(), ['p1.raw']);
});

test('with the simulated camera: every frame arrives once, in order, intact', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { pattern: 'frame*.npy', completion: 'rename', stopFile: 'STOP', rescanMs: 50 });
  const c = collect(w);
  await runCamera({ dir, format: 'npy', frames: 12, fps: 100, dtype: 'uint16', shape: [8, 8], seed: 3, stopFile: 'STOP' });
  await c.done;
  assert.equal(c.items.length, 12);
  for (const [i, f] of c.items.entries()) {
    assert.equal(f.name, `frame${String(i + 1).padStart(6, '0')}.npy`);
    assert.deepEqual((await readFrames(f.path)).data, expectedFrame(3, i, 'uint16', [8, 8]));
  }
});

test('with the camera writing in place in two steps, quiet mode waits for whole files', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { quietMs: 400, rescanMs: 10, stopFile: 'STOP' });
  const c = collect(w);
  await runCamera({ dir, format: 'tiff', frames: 3, dtype: 'uint8', shape: [16, 16], write: 'two-step', pauseMs: 30, seed: 4 });
  await until(() => c.items.length === 3);
  await writeFile(join(dir, 'STOP'), '');
  await c.done;
  for (const [i, f] of c.items.entries()) {
    assert.equal(f.by, 'quiet');
    assert.deepEqual((await readFrames(f.path)).data, expectedFrame(4, i, 'uint8', [16, 16]));
  }
});

test('a file given back unchanged is kept, not yielded again — until it changes and is complete again (flagged retried)', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { quietMs: 100, rescanMs: 10 });
  const c = collect(w);
  await writeFile(join(dir, 'img_1.raw'), 'half');
  await until(() => c.items.length === 1);
  assert.equal(await w.reconsider(c.items[0]!), undefined, 'unchanged: judged by the consumer');
  await sleep(300);
  assert.equal(c.items.length, 1, 'a kept file that does not change is not yielded again');
  await appendFile(join(dir, 'img_1.raw'), ' and the rest');
  await writeFile(join(dir, 'img_2.raw'), 'next');
  await until(() => c.items.length === 3);
  w.finish();
  await c.done;
  assert.deepEqual(c.names(), ['img_1.raw', 'img_1.raw', 'img_2.raw'], 'the retried file keeps its place before later ones still pending');
  assert.equal(c.items[1]!.retried, true);
  assert.equal(c.items[1]!.size, 'half and the rest'.length);
  assert.equal(c.items[2]!.retried, undefined);
});

test('a file that changed after it was completed is taken back unjudged ("later") and yielded once complete', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { quietMs: 100, rescanMs: 10 });
  const c = collect(w);
  await writeFile(join(dir, 'img_1.raw'), 'half');
  await until(() => c.items.length === 1);
  await appendFile(join(dir, 'img_1.raw'), ' and the rest');
  assert.equal(await w.reconsider(c.items[0]!), 'later');
  await until(() => c.items.length === 2);
  assert.equal(c.items[1]!.retried, true);
  assert.equal(c.items[1]!.size, 'half and the rest'.length);
  w.stop();
  await c.done;
});

test('once a watch is ending nothing is taken back: after finish() a changed file is handed back to read now; after stop() it is judged', async (t) => {
  const dir = await tempDir(t);
  const w = watchFolder(dir, { completion: 'rename', rescanMs: 10 });
  const c = collect(w);
  await writeFile(join(dir, 'a1.raw'), 'x');
  await writeFile(join(dir, 'b1.raw'), 'x');
  await until(() => c.items.length === 2);
  w.finish();
  await c.done;
  await appendFile(join(dir, 'a1.raw'), 'yz');
  const now = await w.reconsider(c.items[0]!);
  assert.ok(now !== undefined && now !== 'later');
  assert.equal(now.size, 3);
  assert.equal(await w.reconsider(c.items[1]!), undefined, 'unchanged');

  const s = watchFolder(dir, { completion: 'rename', rescanMs: 10 });
  const d = collect(s);
  await until(() => d.items.length === 2);
  s.stop();
  await d.done;
  await appendFile(join(dir, 'b1.raw'), 'yz');
  assert.equal(await s.reconsider(d.items[1]!), undefined);
});

test('settled: a listed file that changed is waited for until quiet and returned as it is then; one that did not is left to judge', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'f1.raw'), 'ab');
  const [listed] = await listCompleted(dir);
  assert.equal(await settled(listed!, { quietMs: 50 }), undefined, 'unchanged');
  await appendFile(join(dir, 'f1.raw'), 'c');
  // writes far closer together than the quiet period
  const writing = (async () => {
    for (let i = 0; i < 5; i++) await appendFile(join(dir, 'f1.raw'), 'd');
  })();
  const now = await settled(listed!, { quietMs: 3000 });
  await writing;
  assert.equal(now?.size, 8, 'returned once the writes were over, at the full size');
  await appendFile(join(dir, 'f1.raw'), 'e');
  const ac = new AbortController();
  ac.abort();
  assert.equal(await settled(now!, { quietMs: 50, signal: ac.signal }), undefined, 'not waited for once aborted');
});

test('listCompleted: one-shot, ordered, without temp files, markers or the stop file', async (t) => {
  const dir = await tempDir(t);
  for (const n of ['x10.tif', 'x9.tif', 'x9.tif.done', 'x11.tif.tmp', '.x12.tif', 'STOP', 'readme.md']) await writeFile(join(dir, n), 'x');
  const files = await listCompleted(dir, '*', { markerSuffix: '.done', stopFile: 'STOP' });
  assert.deepEqual(files.map((f) => f.name), ['x9.tif', 'x10.tif', 'readme.md']);
  assert.equal(files[0]!.marker, join(dir, 'x9.tif.done'));
  assert.ok(files.every((f) => f.by === 'listed'));
  assert.deepEqual((await listCompleted(dir, 'x*.tif')).map((f) => f.name), ['x9.tif', 'x10.tif']);
});

test('settings are checked up front', async (t) => {
  const dir = await tempDir(t);
  assert.throws(() => watchFolder(dir, { quietMs: 2000, idleMs: 1000 }), (e) => isFurError(e, 'bad-setting') && /idle/.test((e as Error).message));
  assert.throws(() => watchFolder(dir, { maxFiles: 0 }), (e) => isFurError(e, 'bad-setting'));
  assert.throws(() => watchFolder(dir, { quietMs: -1 }), (e) => isFurError(e, 'bad-setting'));
  assert.throws(() => watchFolder(dir, { pattern: 'a/b' }), (e) => isFurError(e, 'bad-pattern'));
  const gone = watchFolder(join(dir, 'missing'));
  await assert.rejects(collect(gone).done, (e) => isFurError(e, 'unreadable-dir') && (e as Error).message.includes('missing'));
});
