/**
 * A bad file never stops a capture (the real binary): a truncated TIFF, a file of another shape,
 * a stray file and the stop file are kept in place, reported and listed at the end (exit 3),
 * while the frames before and after them are committed; a file the instrument stalls on for
 * longer than the quiet period is read again once it is finished, and committed (exit 0).
 * Every frame is read back with h5wasm and compared with what the camera wrote.
 */
import assert from 'node:assert/strict';
import { open, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cameraFileName, encodeFile, expectedFrame } from '../../src/source/camera.js';
import {
  furBin, jsonLines, liveFur, openDest, readFlags, readStored, scratch, sleep, writeFrames, type Capture, type Dest,
} from '../pipeline/helpers.js';

const C: Capture = { format: 'tiff', dtype: 'uint16', shape: [12, 14], seed: 81, frames: 12 };
/** the frame whose file goes wrong: frame000006.tif */
const BAD = 5;
const badName = cameraFileName(BAD + 1, 'tiff');

/** The camera's TIFF of frame i. */
function tiffOf(i: number, shape = C.shape): Uint8Array {
  return encodeFile('tiff', 'uint16', shape, [expectedFrame(C.seed, i, 'uint16', shape)]);
}

/** Written under a temporary name, then renamed into place, as the camera does. */
async function place(dir: string, name: string, bytes: Uint8Array | string): Promise<void> {
  await writeFile(join(dir, `${name}.tmp`), bytes);
  await rename(join(dir, `${name}.tmp`), join(dir, name));
}

/** Asserts the destination holds exactly frames `indices` of the capture, in that order, each as the camera wrote it. */
async function assertFrames(dest: Dest, indices: number[]): Promise<void> {
  const stored = await readStored(dest, 'append', 'run');
  assert.deepEqual(stored.names, indices.map((i) => cameraFileName(i + 1, 'tiff')));
  indices.forEach((i, k) => assert.deepEqual(stored.frames[k], expectedFrame(C.seed, i, 'uint16', C.shape), `frame ${i}`));
}

const all = Array.from({ length: C.frames }, (_, i) => i);
const allBut = (bad: number) => all.filter((i) => i !== bad);

/**
 * `fur watch` over a live capture: frames before the bad file, the bad file, and — only once fur
 * has reported it — the frames after it and the stop file. The later frames being committed is
 * what shows the capture was not stopped.
 */
async function liveCapture(t: Parameters<typeof scratch>[0], o: {
  dest: Dest; flags: string[]; writeBad: (cam: string) => Promise<void>; badFile: string;
}): Promise<{ code: number | null; stderr: string; events: Array<Record<string, unknown> & { type: string }>; cam: string }> {
  const cam = await scratch(t, 'fur-camera-');
  const fur = liveFur(['watch', cam, o.dest.url('append', 'run'), '--stop-file', 'capture.done', '--batch', '4', '--delete-source', ...o.flags, ...o.dest.flags], t);
  await writeFrames(cam, C, 0, BAD);
  await o.writeBad(cam);
  const rejected = await fur.event((e) => e.type === 'rejected' && e.file === join(cam, o.badFile), `${o.badFile} is reported`);
  // a stray file takes no frame's place: the capture goes on with the frame it would have had
  await writeFrames(cam, C, o.badFile === badName ? BAD + 1 : BAD, C.frames);
  await place(cam, 'capture.done', '');
  const r = await fur.exited;
  assert.ok(typeof rejected.message === 'string' && rejected.message.includes(o.badFile), `the report names the file: ${JSON.stringify(rejected)}`);
  return { ...r, events: fur.events, cam };
}

describe('watch: a bad file is kept, reported, and the capture goes on', () => {
  const cases: Array<[string, string, (cam: string) => Promise<void>, RegExp]> = [
    ['a truncated TIFF', badName, (cam) => place(cam, badName, tiffOf(BAD).subarray(0, 200)), /truncated|past the end|ends/i],
    ['a TIFF of another shape', badName, (cam) => place(cam, badName, tiffOf(BAD, [10, 10])), /uint16\[10x10\].*uint16\[12x14\]/],
    ['a stray file (default --pattern)', 'notes.txt', (cam) => place(cam, 'notes.txt', 'calibration looked fine\n'), /bytes.*--pattern/],
  ];
  for (const [what, file, writeBad, why] of cases) {
    test(`${what}: kept and listed, every other frame committed and deleted, exit 3`, async (t) => {
      const dest = await openDest('sftp', t);
      const pattern = file === 'notes.txt' ? [] : readFlags(C);
      const r = await liveCapture(t, { dest, flags: ['--completion', 'rename', ...pattern], writeBad, badFile: file });
      assert.equal(r.code, 3, r.stderr);
      const done = r.events.at(-1)!;
      assert.equal(done.type, 'done');
      assert.equal(done.endReason, 'stop-file');
      const kept = done.kept as { file: string; message: string }[];
      assert.deepEqual(kept.map((k) => k.file), [join(r.cam, file)], 'the kept files, listed at the end');
      assert.match(kept[0]!.message, why);
      await assertFrames(dest, file === 'notes.txt' ? all : allBut(BAD));
      assert.deepEqual((await readdir(r.cam)).sort(), ['capture.done', file].sort(), 'only the bad file (and the stop file) left');
    });
  }

  test('a file stalled mid-write for longer than the quiet period is read again once finished and committed in its place: exit 0', async (t) => {
    const dest = await openDest('file', t);
    const whole = tiffOf(BAD);
    let resumed = false;
    let markJudged!: () => void;
    const judged = new Promise<void>((r) => { markJudged = r; });
    // the instrument writes half the file, pauses — at least 3 s, and until fur has judged the
    // half file (quiet period 2 s) — then writes the rest
    const stall = async (cam: string) => {
      const fh = await open(join(cam, badName), 'w');
      await fh.write(whole, 0, whole.length >> 1, 0);
      await fh.sync();
      void (async () => {
        await Promise.all([sleep(3000), judged]);
        await fh.write(whole, whole.length >> 1, whole.length - (whole.length >> 1), whole.length >> 1);
        await fh.close();
        resumed = true;
      })();
    };
    const cam = await scratch(t, 'fur-camera-');
    const fur = liveFur(['watch', cam, dest.url('append', 'run'), '--stop-file', 'capture.done', '--batch', '4', '--delete-source', ...readFlags(C)], t);
    await writeFrames(cam, C, 0, BAD);
    await stall(cam);
    const rejected = await fur.event((e) => e.type === 'rejected' && e.file === join(cam, badName), 'the half file is judged');
    assert.match(String(rejected.message), /truncated|past the end|ends/i);
    markJudged();
    await fur.event((e) => e.type === 'retried' && e.file === join(cam, badName), 'the finished file is read again');
    assert.ok(resumed, 'read again only after the instrument finished it');
    await writeFrames(cam, C, BAD + 1, C.frames);
    await place(cam, 'capture.done', '');
    const r = await fur.exited;
    assert.equal(r.code, 0, r.stderr);
    const done = fur.events.at(-1)!;
    assert.equal(done.type, 'done');
    assert.deepEqual(done.kept, [], 'nothing kept in the end');
    assert.equal(done.frames, C.frames);
    // the stalled frame is in its place: the later frames waited behind it
    await assertFrames(dest, all);
    assert.deepEqual(await readdir(cam), ['capture.done']);
  });
});

describe('upload and verify: files that are not frames', () => {
  test('the stop file: with --stop-file it is never a frame (exit 0, left in place); without, it is kept and listed and the upload goes on (exit 3)', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, C, 0, C.frames);
    await writeFile(join(cam, 'capture.done'), '');
    const dest = await openDest('file', t);
    const plain = await furBin(['upload', cam, dest.url('append', 'run'), '--json']);
    assert.equal(plain.code, 3, plain.stderr);
    const done = jsonLines(plain.stdout).at(-1)!;
    assert.deepEqual((done.kept as { file: string }[]).map((k) => k.file), [join(cam, 'capture.done')]);
    await assertFrames(dest, all);

    const other = await openDest('file', t);
    const named = await furBin(['upload', cam, other.url('append', 'run'), '--stop-file', 'capture.done']);
    assert.equal(named.code, 0, named.stderr);
    await assertFrames(other, all);
    const verified = await furBin(['verify', cam, other.url('append', 'run'), '--stop-file', 'capture.done', '--json']);
    assert.equal(verified.code, 0, verified.stderr);
    const report = jsonLines(verified.stdout)[0]!;
    assert.equal(report.equal, C.frames);
    const unnamed = await furBin(['verify', cam, other.url('append', 'run'), '--json']);
    assert.equal(unnamed.code, 3, 'without --stop-file the empty file is a source verify cannot compare');
    assert.deepEqual((jsonLines(unnamed.stdout)[0]!.unreadable as { file: string }[]).map((u) => u.file), ['capture.done']);

    const deleting = await openDest('file', t);
    const r = await furBin(['upload', cam, deleting.url('append', 'run'), '--stop-file', 'capture.done', '--delete-source']);
    assert.equal(r.code, 0, r.stderr);
    await assertFrames(deleting, all);
    assert.deepEqual(await readdir(cam), ['capture.done'], 'the stop file is never deleted: it was never uploaded');
  });

  test('a stray file: with a --pattern it is never read (exit 0); without, it is kept and listed (exit 3); verify likewise', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, C, 0, C.frames);
    await writeFile(join(cam, 'notes.txt'), 'calibration looked fine\n');
    const dest = await openDest('sftp', t);
    const plain = await furBin(['upload', cam, dest.url('append', 'run'), ...dest.flags]);
    assert.equal(plain.code, 3, plain.stderr);
    assert.match(plain.stderr, new RegExp(`kept in place, not uploaded:\\n  ${join(cam, 'notes.txt')}: `));
    await assertFrames(dest, all);
    const verified = await furBin(['verify', cam, dest.url('append', 'run'), ...readFlags(C), ...dest.flags]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stderr, new RegExp(`${C.frames} equal, 0 different, 0 files missing`));

    const other = await openDest('sftp', t);
    const selected = await furBin(['upload', cam, other.url('append', 'run'), '--delete-source', ...readFlags(C), ...other.flags]);
    assert.equal(selected.code, 0, selected.stderr);
    await assertFrames(other, all);
    assert.deepEqual(await readdir(cam), ['notes.txt']);
  });
});
