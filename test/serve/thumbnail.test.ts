import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { test } from 'node:test';
import { encodePng } from '../../src/serve/png.js';
import { MAX_SIDE, thumbnail } from '../../src/serve/thumbnail.js';
import type { NumericDtype } from '../../src/source/frame.js';

function block(dtype: NumericDtype, shape: number[], values: number[], count = 1) {
  const T = { uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, float32: Float32Array, float64: Float64Array }[dtype as 'uint8'];
  const data = new Uint8Array(new T(values).buffer);
  return { dtype, shape, count, data };
}

test('grey: scaled between the 0.5th and 99.5th percentiles of the samples, hot pixels clipped', () => {
  // 200 values 0..199 and one hot pixel: n = 201, lo = v[floor(0.005*200)] = v[1] = 1, hi = v[ceil(0.995*200)] = v[199] = 199
  const values = [...Array.from({ length: 200 }, (_, i) => i), 60000];
  const px = thumbnail(block('uint16', [1, 201], values), 0);
  assert.ok(typeof px !== 'string');
  assert.deepEqual([px.width, px.height, px.channels], [201, 1, 1]);
  assert.equal(px.data[0], 0); // below lo
  assert.equal(px.data[1], 0);
  assert.equal(px.data[100], 128); // floor(99 * 255 / 198 + 0.5)
  assert.equal(px.data[198], 254);
  assert.equal(px.data[199], 255);
  assert.equal(px.data[200], 255); // the hot pixel, clipped
});

test('8-bit RGB as it is; other RGB scaled like grey; the chosen page of a stack', () => {
  const rgb = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120];
  const a = thumbnail(block('uint8', [2, 2, 3], rgb), 0);
  assert.ok(typeof a !== 'string');
  assert.equal(a.channels, 3);
  assert.deepEqual([...a.data], rgb);
  // RGBA: alpha dropped
  const b = thumbnail(block('uint8', [1, 2, 4], [1, 2, 3, 255, 4, 5, 6, 255]), 0);
  assert.ok(typeof b !== 'string');
  assert.deepEqual([...b.data], [1, 2, 3, 4, 5, 6]);
  // two pages of 1x2 float32: page 1 is [5, 7] → 0, 255
  const c = thumbnail(block('float32', [1, 2], [1, 3, 5, 7], 2), 1);
  assert.ok(typeof c !== 'string');
  assert.deepEqual([...c.data], [0, 255]);
  // a flat frame: black (nothing above its only value)
  const d = thumbnail(block('int16', [2, 2], [-5, -5, -5, -5]), 0);
  assert.ok(typeof d !== 'string');
  assert.deepEqual([...d.data], [0, 0, 0, 0]);
});

test('large frames: every s-th pixel of every s-th row, the longer side at most MAX_SIDE', () => {
  const h = 3, w = MAX_SIDE * 2 + 1; // s = 3: rows 0; columns 0, 3, 6, …
  const values = Array.from({ length: h * w }, (_, i) => i % 256);
  const px = thumbnail(block('uint8', [h, w], values), 0);
  assert.ok(typeof px !== 'string');
  assert.deepEqual([px.height, px.width], [1, Math.ceil(w / 3)]);
  assert.ok(px.width <= MAX_SIDE);
  assert.equal(thumbnail({ dtype: 'bytes', shape: [], count: 1, data: new Uint8Array(4) }, 0), 'opaque frames (files kept as they are) are not drawn');
});

test('PNG: signature, header, and the rows behind filter bytes', () => {
  const data = new Uint8Array([1, 2, 3, 4, 5, 6]);
  const png = encodePng({ width: 3, height: 2, channels: 1, data });
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20), png[24], png[25]], [3, 2, 8, 0]);
  const idatLength = png.readUInt32BE(33);
  assert.equal(png.subarray(37, 41).toString('latin1'), 'IDAT');
  assert.deepEqual([...inflateSync(png.subarray(41, 41 + idatLength))], [0, 1, 2, 3, 0, 4, 5, 6]);
  assert.equal(png.subarray(png.length - 8, png.length - 4).toString('latin1'), 'IEND');
});

test('8 and 16-bit integers counted, not sorted: the same percentiles as the rule sorts out', () => {
  let seed = 99;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const [dtype, min, span] of [['uint16', 0, 65536], ['int16', -32768, 65536], ['uint8', 0, 256], ['int8', -128, 256]] as const) {
    for (const n of [1, 2, 7, 201, 3000]) {
      // mostly a narrow band, a few values anywhere (hot and cold pixels)
      const values = Array.from({ length: n }, () => (next() < 0.02 ? min + Math.floor(next() * span) : min + Math.floor(span / 2 + next() * 40)));
      const px = thumbnail(block(dtype, n > 500 ? [n / 50, 50] : [1, n], values), 0); // no side above MAX_SIDE: every value drawn
      assert.ok(typeof px !== 'string');
      const sorted = [...values].sort((a, b) => a - b);
      const lo = sorted[Math.floor(0.005 * (n - 1) + 1e-9)]!;
      const hi = sorted[Math.ceil(0.995 * (n - 1) - 1e-9)]!;
      const want = values.map((v) => (hi <= lo ? (v > lo ? 255 : 0) : Math.min(255, Math.max(0, Math.floor(((v - lo) * 255) / (hi - lo) + 0.5)))));
      assert.deepEqual([...px.data], want, `${dtype}, ${n} values`);
    }
  }
});

test('data not aligned to its element size is read as the aligned copy of it is; the page chosen is the one read', () => {
  // the same two uint16 and float32 pages, once at an aligned offset and once one byte in
  for (const dtype of ['uint16', 'float32'] as const) {
    const aligned = block(dtype, [2, 3], [1, 9, 4, 300, 2, 7, 40, 5, 60, 8, 1000, 3], 2);
    const shifted = new Uint8Array(aligned.data.length + 1).subarray(1);
    shifted.set(aligned.data);
    for (const page of [0, 1]) {
      const a = thumbnail(aligned, page);
      const b = thumbnail({ ...aligned, data: shifted }, page);
      assert.ok(typeof a !== 'string' && typeof b !== 'string');
      assert.deepEqual([...b.data], [...a.data]);
    }
    const p1 = thumbnail(aligned, 1);
    assert.ok(typeof p1 !== 'string');
    // page 1 is 40 5 60 / 8 1000 3: 6 samples, lo = sorted[0] = 3, hi = sorted[5] = 1000; 40 → floor(37 * 255 / 997 + 0.5) = 9
    assert.deepEqual([...p1.data], [9, 1, 15, 1, 255, 0]);
  }
});
