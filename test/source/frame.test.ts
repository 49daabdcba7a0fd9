import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFurError } from '../../src/errors.js';
import { DTYPES, frameAt, itemsize, parseDtype, parseShape, swapBytes } from '../../src/source/frame.js';
import { expectedFrame, halfBits, halfValue } from '../../src/source/pattern.js';

test('itemsize follows numpy', () => {
  assert.deepEqual(DTYPES.map(itemsize), [1, 1, 2, 2, 4, 4, 8, 8, 2, 4, 8, 1]);
});

test('parseDtype accepts names and names the setting when it fails', () => {
  assert.equal(parseDtype('UInt16'), 'uint16');
  assert.equal(parseDtype('bytes'), 'bytes');
  assert.throws(() => parseDtype('uint12', '--dtype'), (e) => isFurError(e, 'unknown-dtype') && e.message.includes('--dtype') && e.message.includes('uint12'));
});

test('parseShape', () => {
  assert.deepEqual(parseShape('512x256'), [512, 256]);
  assert.deepEqual(parseShape('480,640,3'), [480, 640, 3]);
  assert.deepEqual(parseShape('[2, 3]'), [2, 3]);
  for (const bad of ['', '0x5', 'axb', '-1x2', '1.5x2']) {
    assert.throws(() => parseShape(bad, '--shape'), (e) => isFurError(e, 'bad-shape') && e.message.includes('--shape'), bad);
  }
});

test('swapBytes and frameAt', () => {
  const d = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  swapBytes(d, 4);
  assert.deepEqual([...d], [4, 3, 2, 1, 8, 7, 6, 5]);
  const block = { dtype: 'uint16' as const, shape: [2], count: 2, data: d };
  assert.deepEqual([...frameAt(block, 1)], [8, 7, 6, 5]);
  assert.throws(() => frameAt(block, 2), RangeError);
});

test('float16 encoding round-trips representable values', () => {
  for (const v of [0, 1, -2, 0.5, 65504, 2 ** -24, 2 ** -14, 1.5, 1000.5, -0.0009765625]) {
    assert.equal(halfValue(halfBits(v)), v, String(v));
  }
  assert.equal(halfBits(1), 0x3c00);
  assert.equal(halfBits(65520), 0x7c00);
  assert.equal(halfValue(halfBits(1000.25)), 1000); // a tie rounds to the even neighbour
  assert.equal(halfValue(halfBits(1000.75)), 1001);
  assert.equal(halfValue(halfBits(1000.3)), 1000.5);
});

test('expectedFrame is deterministic, seed- and index-dependent, and finite for floats', () => {
  const a = expectedFrame(7, 3, 'uint16', [8, 8]);
  assert.equal(a.length, 128);
  assert.deepEqual(a, expectedFrame(7, 3, 'uint16', [8, 8]));
  assert.notDeepEqual(a, expectedFrame(7, 4, 'uint16', [8, 8]));
  assert.notDeepEqual(a, expectedFrame(8, 3, 'uint16', [8, 8]));
  for (const dt of ['float16', 'float32', 'float64'] as const) {
    const f = expectedFrame(1, 5, dt, [16, 16]);
    const v = new DataView(f.buffer);
    for (let o = 0; o < f.length; o += itemsize(dt)) {
      const x = dt === 'float16' ? halfValue(v.getUint16(o, true)) : dt === 'float32' ? v.getFloat32(o, true) : v.getFloat64(o, true);
      assert.ok(Number.isFinite(x));
    }
  }
  const j1 = expectedFrame(1, 0, 'bytes', [32, 32]);
  const j2 = expectedFrame(1, 1, 'bytes', [32, 32]);
  assert.deepEqual([...j1.subarray(0, 2)], [0xff, 0xd8]);
  assert.deepEqual([...j1.subarray(-2)], [0xff, 0xd9]);
  assert.notEqual(j1.length === j2.length && j1.every((b, i) => b === j2[i]), true);
});
