/**
 * openCapture: frames pushed from memory, stored with the command's commits. Read back with
 * h5wasm: the frames, their names and the values given with them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openCapture, isFurError, type ProgressEvent } from '../../src/index.js';
import { DEST_KINDS, openDest, readStored } from '../pipeline/helpers.js';
import { dataset, h5wasmRead, valueStrings } from '../support/h5wasm.js';

const SHAPE = [16, 24];

/** frame i: every pixel a function of i and its place, so frames differ from each other */
export function frame(i: number, shape = SHAPE): Uint16Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = new Uint16Array(n);
  for (let p = 0; p < n; p++) f[p] = (i * 7919 + p * 31) & 0xffff;
  return f;
}

const name = (i: number) => `frame_${String(i).padStart(6, '0')}`;

describe('openCapture', () => {
  for (const kind of DEST_KINDS) {
    for (const method of ['append', 'batches'] as const) {
      test(`${kind} ${method}: frames pushed from memory read back equal, with names and attrs`, async (t) => {
        const dest = await openDest(kind, t);
        const events: ProgressEvent[] = [];
        const capture = await openCapture(dest.url(method, 'run'), {
          method, dtype: 'uint16', shape: SHAPE, batch: 10,
          passwordEnv: dest.kind === 'sftp' ? dest.flags[1] : undefined, knownHosts: dest.kind === 'sftp' ? dest.flags[3] : undefined,
          onProgress: (e) => events.push(e),
        });
        assert.equal(capture.committed.size, 0);
        for (let i = 0; i < 35; i++) await capture.append(frame(i), { name: name(i), attrs: { exposure_ms: 10 + i, sample: 'lysozyme' } });
        const summary = await capture.close();
        assert.equal(summary.frames, 35);
        assert.equal(summary.files, 35);
        assert.equal(capture.committed.size, 35);
        assert.ok(events.some((e) => e.type === 'commit'));
        assert.ok(events.some((e) => e.type === 'done'));
        const stored = await readStored(dest, method, 'run');
        assert.deepEqual(stored.names, Array.from({ length: 35 }, (_, i) => name(i)));
        stored.frames.forEach((f, i) => assert.deepEqual(new Uint16Array(f.slice().buffer), frame(i), `frame ${i}`));
        const attrs = stored.docs.flatMap((d) => valueStrings(dataset(d, '/frame_attrs'))).map((s) => JSON.parse(s));
        assert.deepEqual(attrs, Array.from({ length: 35 }, (_, i) => ({ exposure_ms: 10 + i, sample: 'lysozyme' })));
      });
    }
  }

  test('a name is stored once: refused if pushed twice, or committed by an earlier capture', async (t) => {
    const dest = await openDest('file', t);
    const url = dest.url('append', 'names');
    const first = await openCapture(url, { dtype: 'uint16', shape: SHAPE });
    await first.append(frame(0), { name: 'a' });
    await assert.rejects(first.append(frame(1), { name: 'a' }), (e) => isFurError(e, 'name-repeated'));
    await first.close();
    const second = await openCapture(url, { dtype: 'uint16', shape: SHAPE });
    assert.deepEqual([...second.committed], ['a']);
    await assert.rejects(second.append(frame(1), { name: 'a' }), (e) => isFurError(e, 'name-committed') && /committed at the destination/.test(e.message));
    await second.append(frame(1), { name: 'b' });
    await second.close();
    const doc = await h5wasmRead(dest.local('append', 'names'));
    assert.deepEqual(valueStrings(dataset(doc, '/frame_name')), ['a', 'b']);
  });

  test('frames that do not fit the capture are refused with a typed error', async (t) => {
    const dest = await openDest('file', t);
    const capture = await openCapture(dest.url('append', 'fit'), { dtype: 'uint16', shape: SHAPE });
    await assert.rejects(capture.append(new Uint16Array(5), { name: 'short' }), (e) => isFurError(e, 'bad-frame') && /not a whole number/.test(e.message));
    await assert.rejects(capture.append(new Float32Array(SHAPE[0]! * SHAPE[1]! / 2), { name: 'float' }), (e) => isFurError(e, 'bad-frame') && /Float32Array/.test(e.message));
    await assert.rejects(capture.append(frame(0), { name: 'a/b' }), (e) => isFurError(e, 'unsafe-name'));
    // raw bytes of the right length are frames
    await capture.append(Buffer.from(frame(3).buffer), { name: 'bytes' });
    const s = await capture.close();
    assert.equal(s.frames, 1);
    await assert.rejects(capture.append(frame(4), { name: 'late' }), (e) => isFurError(e, 'capture-closed'));
  });

  test('a bad setting is refused before anything connects, naming the setting', async () => {
    await assert.rejects(openCapture('sftp://nobody@127.0.0.1:1/x.h5', { dtype: 'uint16', shape: SHAPE, batch: 0 }), (e) => isFurError(e, 'bad-option') && /--batch/.test(e.message));
    await assert.rejects(openCapture('ftps://nobody@127.0.0.1:1/x.h5', { dtype: 'uint16', shape: SHAPE }), (e) => isFurError(e, 'method-unsupported'));
    await assert.rejects(openCapture('file:///tmp/x.h5', { dtype: 'uint16', shape: [0, 4] }), (e) => isFurError(e, 'bad-shape'));
  });
});
