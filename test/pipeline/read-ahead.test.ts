/**
 * readAhead before it judges a file: a file that could not be used is reconsidered — read again
 * at once when it has settled, left to the source when the source will yield it again, rejected
 * (skipped or the end of the run) when it has not changed — and a failure of the settings ends
 * the run whatever --on-mismatch says. Frames are compared with what the camera wrote.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFurError } from '../../src/errors.js';
import { readAhead, type Rejected, type SourceItem } from '../../src/pipeline/batch.js';
import { cameraFileName, encodeFile, expectedFrame } from '../../src/source/camera.js';
import { listCompleted, type CompletedFile } from '../../src/source/watch.js';
import { scratch } from './helpers.js';

const SHAPE = [6, 7];
const tiff = (i: number) => encodeFile('tiff', 'uint8', SHAPE, [expectedFrame(9, i, 'uint8', SHAPE)]);

/** frames 0..n-1 in a folder, frame `bad` cut short */
async function folder(t: Parameters<typeof scratch>[0], n: number, bad: number): Promise<{ files: CompletedFile[] }> {
  const dir = await scratch(t, 'fur-read-ahead-');
  for (let i = 0; i < n; i++) await writeFile(join(dir, cameraFileName(i + 1, 'tiff')), i === bad ? tiff(i).subarray(0, 60) : tiff(i));
  return { files: await listCompleted(dir) };
}

async function* each<T>(items: T[]): AsyncGenerator<T> { yield* items; }

async function drain(it: AsyncIterable<SourceItem>): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const ahead = { files: 64, bytes: 8 << 20 };

function assertFrames(items: SourceItem[], indices: number[]): void {
  assert.deepEqual(items.map((x) => x.file.name), indices.map((i) => cameraFileName(i + 1, 'tiff')));
  items.forEach((x, k) => assert.deepEqual(x.block.data, expectedFrame(9, indices[k]!, 'uint8', SHAPE), `frame ${indices[k]}`));
}

test('a file that settled since it was completed is read again at once, in its place', async (t) => {
  const { files } = await folder(t, 5, 2);
  const rejected: Rejected[] = [];
  const asked: string[] = [];
  const items = await drain(readAhead(each(files), {}, ahead, (r) => rejected.push(r), 'stop', async (f) => {
    asked.push(f.name);
    await writeFile(f.path, tiff(2)); // the instrument finished it
    return { ...f, size: tiff(2).length };
  }));
  assert.deepEqual(asked, [cameraFileName(3, 'tiff')]);
  assert.deepEqual(rejected, []);
  assertFrames(items, [0, 1, 2, 3, 4]);
});

test('a file the source will yield again is neither used nor judged now', async (t) => {
  const { files } = await folder(t, 4, 1);
  const rejected: Rejected[] = [];
  const items = await drain(readAhead(each(files), {}, ahead, (r) => rejected.push(r), 'stop', async () => 'later'));
  assert.deepEqual(rejected, []);
  assertFrames(items, [0, 2, 3]);
});

test('an unchanged bad file is rejected: skipped, or the end of the run', async (t) => {
  const { files } = await folder(t, 4, 1);
  const rejected: Rejected[] = [];
  const items = await drain(readAhead(each(files), {}, ahead, (r) => rejected.push(r), 'skip', async () => undefined));
  assertFrames(items, [0, 2, 3]);
  assert.deepEqual(rejected.map((r) => [r.file.name, r.error.tag]), [[cameraFileName(2, 'tiff'), 'tiff-truncated']]);

  const stopped: SourceItem[] = [];
  await assert.rejects(async () => { for await (const x of readAhead(each(files), {}, ahead, () => undefined, 'stop', async () => undefined)) stopped.push(x); },
    (e) => isFurError(e, 'tiff-truncated'));
  assertFrames(stopped, [0]);
});

test('raw files without a declared layout end the run even with skip: every file would fail alike', async (t) => {
  const dir = await scratch(t, 'fur-read-ahead-');
  await writeFile(join(dir, 'frame1.raw'), new Uint8Array(8));
  await assert.rejects(drain(readAhead(each(await listCompleted(dir)), {}, ahead, () => undefined, 'skip', async () => undefined)),
    (e) => isFurError(e, 'raw-needs-layout'));
});
