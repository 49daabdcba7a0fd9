/**
 * openCapture: frames pushed from memory, stored with the command's commits. Read back with
 * h5wasm: the frames, their names and the values given with them.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openCapture, isFurError, type ProgressEvent } from '../../src/index.js';
import { DEST_KINDS, openDest, readStored, runKilledAfter, slowSftp } from '../pipeline/helpers.js';
import { h5wasmRead, perFrame, valueStrings } from '../support/h5wasm.js';
import { frame, SHAPE } from './support/frames.js';


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
        const attrs = stored.docs.flatMap((d) => valueStrings(perFrame(d, 'frame_attrs'))).map((s) => JSON.parse(s));
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
    assert.deepEqual(valueStrings(perFrame(doc, 'frame_name')), ['a', 'b']);
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

describe('openCapture: resume and back-pressure', () => {
  test('a program killed (SIGKILL) mid-capture: re-opened, `committed` says what is stored, it goes on; every frame once', async (t) => {
    const dest = await openDest('file', t);
    const url = dest.url('append', 'resume');
    const program = join(dirname(fileURLToPath(import.meta.url)), 'support', 'push-forever.js');
    const r = await runKilledAfter([url], 3, { program });
    assert.ok(r.killed, r.stderr);
    const again = await openCapture(url, { dtype: 'uint16', shape: SHAPE, batch: 10 });
    const k = again.committed.size;
    assert.ok(k >= 30, `3 commits of 10 frames seen before the kill, ${k} committed`);
    // commits land in order: what is committed is the first k frames pushed
    assert.deepEqual([...again.committed].sort(), Array.from({ length: k }, (_, i) => `frame_${i}`).sort());
    await assert.rejects(again.append(frame(0), { name: 'frame_0' }), (e) => isFurError(e, 'name-committed'));
    for (let i = k; i < k + 25; i++) await again.append(frame(i), { name: `frame_${i}` });
    assert.equal((await again.close()).frames, 25);
    const stored = await readStored(dest, 'append', 'resume');
    assert.deepEqual(stored.names, Array.from({ length: k + 25 }, (_, i) => `frame_${i}`));
    stored.frames.forEach((f, i) => assert.deepEqual(new Uint16Array(f.slice().buffer), frame(i), `frame ${i}`));
  });

  test('a slow destination (SFTP over a 150 ms link): append waits, frames held stay under maxBuffered', async (t) => {
    const dest = await openDest('sftp', t);
    const slow = await slowSftp(dest, 150, t);
    const frameBytes = SHAPE[0]! * SHAPE[1]! * 2;
    const maxBuffered = 6 * frameBytes;
    const capture = await openCapture(slow.url('append', 'slow'), {
      dtype: 'uint16', shape: SHAPE, batch: 2, maxBuffered, passwordEnv: dest.flags[1], knownHosts: slow.knownHosts,
    });
    const N = 40;
    let waited = 0;
    let most = 0;
    for (let i = 0; i < N; i++) {
      const appended = capture.append(frame(i), { name: name(i) });
      // a push with room resolves before the event loop turns; one that waits for a commit does not
      const atOnce = await Promise.race([appended.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]);
      if (!atOnce) waited++;
      await appended;
      most = Math.max(most, capture.buffered);
    }
    assert.ok(waited > 0, 'append waited for room at least once');
    assert.ok(most <= maxBuffered, `held ${most} bytes, at most ${maxBuffered}`);
    assert.equal((await capture.close()).frames, N);
    const stored = await readStored(dest, 'append', 'slow');
    assert.deepEqual(stored.names, Array.from({ length: N }, (_, i) => name(i)));
    stored.frames.forEach((f, i) => assert.deepEqual(new Uint16Array(f.slice().buffer), frame(i), `frame ${i}`));
  });
});
