/**
 * How the frames are stored: filters (shuffle, deflate, Fletcher-32) as HDF5 2.0 reads them back
 * with the values intact, the default chunk shape (whole frames, 1-8 MiB) and --chunk-frames,
 * and --dataset.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { runCamera } from '../../src/source/camera.js';
import { dataset, FILTER, h5wasmRead } from '../support/h5wasm.js';
import { assertCapture, cli, openDest, readFlags, readH5, readStored, scratch, type Capture } from './helpers.js';

const MiB = 1 << 20;

async function upload(t: Parameters<typeof scratch>[0], c: Capture, method: 'append' | 'batches', flags: string[]) {
  const cam = await scratch(t, 'fur-camera-');
  const dest = await openDest('file', t);
  await runCamera({ dir: cam, format: c.format, dtype: c.dtype as never, shape: c.shape, seed: c.seed, frames: c.frames });
  const r = await cli(['upload', cam, dest.url(method, 'run'), '--method', method, ...readFlags(c), ...flags]);
  assert.equal(r.code, 0, r.stderr);
  return dest;
}

describe('filters', () => {
  const c: Capture = { format: 'tiff', dtype: 'uint16', shape: [40, 36], seed: 51, frames: 24 };
  // [what, flags, filters for append, filters for batches, gzip level]; append checksums by default
  const F = FILTER.fletcher32;
  const cases: Array<[string, string[], number[], number[], number | null]> = [
    ['by default', [], [F], [], null],
    ['--no-checksum', ['--no-checksum'], [], [], null],
    ['--compression gzip (level 4)', ['--compression', 'gzip'], [FILTER.deflate, F], [FILTER.deflate], 4],
    ['--compression gzip:9 --shuffle --no-checksum', ['--compression', 'gzip:9', '--shuffle', '--no-checksum'], [FILTER.shuffle, FILTER.deflate], [FILTER.shuffle, FILTER.deflate], 9],
    ['--checksum', ['--checksum'], [F], [F], null],
    ['--shuffle --compression gzip:1 --checksum', ['--shuffle', '--compression', 'gzip:1', '--checksum'], [FILTER.shuffle, FILTER.deflate, F], [FILTER.shuffle, FILTER.deflate, F], 1],
    ['--compression none', ['--compression', 'none'], [F], [], null],
  ];
  for (const method of ['append', 'batches'] as const) {
    for (const [what, flags, appendIds, batchIds, level] of cases) {
      const ids = method === 'append' ? appendIds : batchIds;
      test(`${method}: ${what} → ${ids.length ? ids.map((i) => Object.entries(FILTER).find(([, v]) => v === i)![0]).join(', ') : 'no filters'}`, async (t) => {
        const dest = await upload(t, c, method, ['--batch', '10', ...flags]);
        const stored = await readStored(dest, method, 'run');
        assertCapture(stored, c);
        for (const doc of stored.docs) {
          const data = dataset(doc, '/data');
          assert.deepEqual(data.filters.map((f) => f.id), ids, 'filter pipeline in order');
          assert.equal(data.shuffle, ids.includes(FILTER.shuffle));
          assert.equal(data.fletcher32, ids.includes(FILTER.fletcher32));
          assert.equal(data.compression, level === null ? null : 'gzip');
          assert.equal(data.compression_opts, level);
          if (ids.includes(FILTER.shuffle)) assert.deepEqual(data.filters.find((f) => f.id === FILTER.shuffle)!.cd_values.slice(0, 1), [2], 'shuffle by the element size');
        }
      });
    }
  }

  test('gzip makes the stored file smaller for compressible frames, and the values survive', async (t) => {
    const big: Capture = { format: 'tiff', dtype: 'uint16', shape: [128, 128], seed: 52, frames: 12 };
    const plain = await upload(t, big, 'append', []);
    const packed = await upload(t, big, 'append', ['--compression', 'gzip:6', '--shuffle']);
    const { size: a } = await import('node:fs/promises').then((fs) => fs.stat(plain.local('append', 'run')));
    const { size: b } = await import('node:fs/promises').then((fs) => fs.stat(packed.local('append', 'run')));
    assert.ok(b < a * 0.8, `compressed ${b} vs plain ${a}`);
    assertCapture(await readStored(packed, 'append', 'run'), big);
  });
});

describe('chunks', () => {
  test('default: whole frames, 1-8 MiB, a divisor of the batch (256x256x3 uint8, batch 50 → 25 frames)', async (t) => {
    const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [256, 256, 3], seed: 53, frames: 50 };
    const dest = await upload(t, c, 'append', ['--batch', '50']);
    const doc = await h5wasmRead(dest.local('append', 'run'), { values: false });
    const data = dataset(doc, '/data');
    assert.deepEqual(data.chunks!.slice(1), c.shape, 'whole frames');
    const bytes = data.chunks!.reduce((a, b) => a * b, 1);
    assert.ok(bytes >= MiB && bytes <= 8 * MiB, `chunk of ${bytes} bytes`);
    assert.equal(50 % data.chunks![0]!, 0, 'a batch ends on a chunk boundary');
    assert.deepEqual(data.chunks, [25, 256, 256, 3]);
    assertCapture(await readH5(dest.local('append', 'run')), c);
  });

  test('default for small frames: the whole batch when it is under 1 MiB', async (t) => {
    const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [32, 48, 3], seed: 54, frames: 30 };
    const dest = await upload(t, c, 'append', ['--batch', '12']);
    const data = dataset(await h5wasmRead(dest.local('append', 'run'), { values: false }), '/data');
    assert.deepEqual(data.chunks, [12, 32, 48, 3]);
    assertCapture(await readH5(dest.local('append', 'run')), c);
  });

  test('--chunk-frames 7 sets the chunk length along the frame axis, batches of 10 straddle chunks', async (t) => {
    const c: Capture = { format: 'npy', dtype: 'float32', shape: [20, 30], seed: 55, frames: 31 };
    for (const method of ['append', 'batches'] as const) {
      const dest = await upload(t, c, method, ['--batch', '10', '--chunk-frames', '7']);
      const stored = await readStored(dest, method, 'run');
      for (const doc of stored.docs) assert.deepEqual(dataset(doc, '/data').chunks, [7, 20, 30]);
      assertCapture(stored, c);
    }
  });

  test('opaque frames (JPEG) are stored one vlen element per frame, chunked along the frames', async (t) => {
    const c: Capture = { format: 'jpeg', dtype: 'uint8', shape: [60, 60], seed: 56, frames: 25 };
    const dest = await upload(t, c, 'append', ['--batch', '10']);
    const data = dataset(await h5wasmRead(dest.local('append', 'run'), { values: false }), '/data');
    assert.equal(data.shape!.length, 1);
    assert.equal(data.chunks!.length, 1);
    assertCapture(await readH5(dest.local('append', 'run')), c);
  });
});

test('--layout flat --dataset /entry/data puts the frames and per-frame datasets in that group', async (t) => {
  const c: Capture = { format: 'tiff', dtype: 'uint16', shape: [6, 6], seed: 57, frames: 9 };
  for (const method of ['append', 'batches'] as const) {
    const dest = await upload(t, c, method, ['--layout', 'flat', '--dataset', '/entry/data', '--batch', '4']);
    const path = method === 'append' ? dest.local(method, 'run') : `${dest.local(method, 'run')}/frame000001.h5`;
    const doc = await h5wasmRead(path, { values: false });
    for (const p of ['/entry/data', '/entry/frame_name', '/entry/frame_page', '/entry/frame_mtime']) assert.equal(doc.objects[p]?.kind, 'dataset', p);
    assert.equal(doc.objects['/data'], undefined);
    if (method === 'append') assertCapture(await readH5(path, '/entry/data'), c);
  }
});

test('the NeXus layout keeps /entry for itself: --dataset /entry/data is refused before anything is sent (exit 2); another --dataset is the link to the frames', async (t) => {
  const c: Capture = { format: 'tiff', dtype: 'uint16', shape: [6, 6], seed: 58, frames: 5 };
  const cam = await scratch(t, 'fur-camera-');
  const dest = await openDest('file', t);
  await runCamera({ dir: cam, format: c.format, dtype: c.dtype as never, shape: c.shape, seed: c.seed, frames: c.frames });
  const r = await cli(['upload', cam, dest.url('append', 'refused'), '--dataset', '/entry/data', ...readFlags(c)]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--dataset "\/entry\/data": the NeXus layout keeps the frames at \/entry\/data\/data/);
  assert.equal(existsSync(dest.local('append', 'refused')), false);
  const ok = await cli(['upload', cam, dest.url('append', 'run'), '--dataset', '/frames', ...readFlags(c)]);
  assert.equal(ok.code, 0, ok.stderr);
  const doc = await h5wasmRead(dest.local('append', 'run'), { values: false });
  assert.deepEqual(doc.objects['/frames'], { kind: 'softlink', target: '/entry/data/data' });
  assert.equal(doc.objects['/data'], undefined);
  assertCapture(await readH5(dest.local('append', 'run'), '/frames'), c);
});
