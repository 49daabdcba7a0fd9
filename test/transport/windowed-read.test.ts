/**
 * WindowedReadFile (S3 and FTPS reads): every read returns the object's own bytes, whatever the
 * cache held before — small reads from shared 1 MiB windows, large ones straight through, the
 * last large one kept.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WindowedReadFile } from '../../src/transport/windowed-read.js';

const MiB = 1 << 20;

function object(size: number): { bytes: Uint8Array; fetches: [number, number][]; file: WindowedReadFile } {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >>> 20)) & 0xff;
  const fetches: [number, number][] = [];
  const file = new WindowedReadFile('obj', size, async (o, n) => { fetches.push([o, n]); return bytes.slice(o, o + n); });
  return { bytes, fetches, file };
}

test('small reads share windows: a read across a boundary fetches what it lacks in one request', async () => {
  const { bytes, fetches, file } = object(4 * MiB + 100);
  assert.deepEqual(await file.read(10, 20), bytes.subarray(10, 30));
  assert.deepEqual(await file.read(MiB - 8, 16), bytes.subarray(MiB - 8, MiB + 8));
  assert.deepEqual(await file.read(100, 1000), bytes.subarray(100, 1100));
  assert.deepEqual(fetches, [[0, MiB], [MiB, MiB]]);
  // the object's end: a read past it is cut there
  assert.deepEqual(await file.read(4 * MiB + 90, 50), bytes.subarray(4 * MiB + 90));
  // large reads go straight through
  assert.deepEqual(await file.read(5, 2 * MiB), bytes.subarray(5, 5 + 2 * MiB));
  assert.deepEqual(fetches.at(-1), [5, 2 * MiB]);
});

test('a read across a boundary when the cache is full keeps the window it holds and needs', async () => {
  const { bytes, file } = object(40 * MiB);
  // window 0 first (the oldest), then 31 more: the cache is full
  await file.read(0, 10);
  for (let w = 2; w <= 32; w++) await file.read(w * MiB, 10);
  // windows 0 (held, oldest) and 1 (missing): fetching 1 must not evict 0
  assert.deepEqual(await file.read(MiB - 4, 8), bytes.subarray(MiB - 4, MiB + 4));
});

test('a large read asked for again (the next frame of the same chunk) is not fetched again, and is a copy', async () => {
  const { bytes, fetches, file } = object(8 * MiB);
  const first = await file.read(MiB, 2 * MiB);
  first.fill(0);
  assert.deepEqual(await file.read(MiB, 2 * MiB), bytes.subarray(MiB, 3 * MiB));
  // a part of it, as large as a read that goes straight through
  assert.deepEqual(await file.read(MiB + 100, MiB), bytes.subarray(MiB + 100, 2 * MiB + 100));
  assert.deepEqual(fetches, [[MiB, 2 * MiB]]);
  // another chunk replaces it
  assert.deepEqual(await file.read(4 * MiB, 2 * MiB), bytes.subarray(4 * MiB, 6 * MiB));
  assert.deepEqual(await file.read(MiB, 2 * MiB), bytes.subarray(MiB, 3 * MiB));
  assert.deepEqual(fetches, [[MiB, 2 * MiB], [4 * MiB, 2 * MiB], [MiB, 2 * MiB]]);
});
