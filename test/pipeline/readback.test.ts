/**
 * Where a commit cannot be made durable (here: fur's in-process SFTP server announcing no
 * fsync@openssh.com), --delete-source deletes a source only once its frames read back intact:
 *
 *  - every method: the run says so in one line at start, reads back, and deletes every source
 *    whose frames the server holds as sent (h5wasm reads the same frames);
 *  - a stored frame changed on the server's disk after the commit: the read-back of that batch,
 *    and of what an earlier run committed, keeps that source and reports it; the others go;
 *  - --delete-unsynced deletes without a read-back; alone it is a usage error.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FurError } from '../../src/errors.js';
import { SourceCleanup } from '../../src/pipeline/cleanup.js';
import { DEFAULTS, type PipelineOptions } from '../../src/pipeline/options.js';
import { sameFile } from '../../src/pipeline/readback.js';
import { expectedFrame } from '../../src/source/camera.js';
import type { CompletedFile } from '../../src/source/watch.js';
import { openDestination } from '../../src/transport/open.js';
import type { Destination } from '../../src/transport/destination.js';
import { cli, METHODS, openDest, PASSWORD_ENV, readStored, scratch, type Dest, type Method } from './helpers.js';

const FRAMES = 12;
const SHAPE = [16, 24];
const frame = (i: number) => Buffer.from(expectedFrame(77, i, 'uint8', SHAPE));
const name = (i: number) => `frame${String(i).padStart(3, '0')}.raw`;
const READ = ['--dtype', 'uint8', '--shape', SHAPE.join('x'), '--pattern', 'frame*.raw'];
const NOTICE = /^fur: warning: sftp:\/\/.*: a commit cannot be made durable here \(the server does not offer fsync@openssh\.com\), so a crash of the server may lose it; a source is deleted only once its frames read back intact from the server \(--delete-unsynced skips that\)$/m;

async function capture(t: Parameters<typeof scratch>[0]): Promise<string> {
  const cam = await scratch(t, 'fur-camera-');
  for (let i = 0; i < FRAMES; i++) await writeFile(join(cam, name(i)), frame(i));
  return cam;
}

/** the destination the CLI would open for `method`, and the path inside it */
async function open(dest: Dest, method: Method, t: { after: (fn: () => Promise<void>) => void }): Promise<{ d: Destination; path: string }> {
  const url = dest.url(method, 'run');
  const known = dest.flags[dest.flags.indexOf('--known-hosts') + 1]!;
  const folder = method === 'append' ? url.slice(0, url.lastIndexOf('/')) : url;
  const d = await openDestination(folder, { passwordEnv: PASSWORD_ENV, knownHosts: known });
  t.after(() => d.close());
  return { d, path: method === 'append' ? 'run.h5' : '.' };
}

/** Changes one byte of frame `i` wherever the server stores it (a rewritten partial chunk leaves an older copy). */
async function damage(file: string, i: number): Promise<void> {
  const bytes = await readFile(file);
  let copies = 0;
  for (let at = bytes.indexOf(frame(i)); at >= 0; at = bytes.indexOf(frame(i), at + 1)) {
    bytes[at + 5] ^= 0xff;
    copies++;
  }
  assert.ok(copies > 0, `frame ${i} is stored in ${file}`);
  await writeFile(file, bytes);
}

/** a source as the watcher reports it: its size and time as they are on disk */
const completed = (dir: string, i: number): CompletedFile => {
  const path = join(dir, name(i));
  const st = statSync(path);
  return { path, name: name(i), size: st.size, mtimeMs: st.mtimeMs, by: 'listed', outOfOrder: false };
};

describe('a server without fsync@openssh.com: --delete-source reads frames back first', () => {
  for (const method of METHODS) {
    test(`${method}: said at start, every source read back intact and deleted`, async (t) => {
      const cam = await capture(t);
      const dest = await openDest('sftp', t, { extensions: false });
      const r = await cli(['upload', cam, dest.url(method, 'run'), '--method', method, '--batch', '5', '--delete-source', ...READ, ...dest.flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, NOTICE);
      assert.deepEqual(await readdir(cam), [], 'every source deleted');
      const stored = await readStored(dest, method, 'run', { dtype: 'uint8', shape: SHAPE });
      assert.deepEqual(stored.names, Array.from({ length: FRAMES }, (_, i) => name(i)));
      stored.frames.forEach((f, i) => assert.ok(Buffer.from(f).equals(frame(i)), `frame ${i}`));
    });
  }

  for (const method of ['append', 'batches'] as const) {
    test(`${method}: a frame changed on the server after its commit keeps its source; the others are deleted`, async (t) => {
      const cam = await capture(t);
      const dest = await openDest('sftp', t, { extensions: false });
      const r = await cli(['upload', cam, dest.url(method, 'run'), '--method', method, '--batch', '100', ...READ, ...dest.flags]);
      assert.equal(r.code, 0, r.stderr);
      const stored = method === 'append' ? dest.local(method, 'run') : join(dest.local(method, 'run'), 'frame000.h5');
      await damage(stored, 4);

      const { d, path } = await open(dest, method, t);
      const kept: Array<{ file: string; error: FurError }> = [];
      const options: PipelineOptions = { ...DEFAULTS, method, deleteSource: true };
      const cleanup = new SourceCleanup(d, path, options, (m) => assert.fail(m), (f, error) => kept.push({ file: f.name, error }));
      assert.equal(cleanup.readBack, true);
      const files = Array.from({ length: FRAMES }, (_, i) => completed(cam, i));
      // the batch just committed: rows 0-5 of the file
      assert.equal(await cleanup.batch(files.slice(0, 6), { path: method === 'append' ? path : 'frame000.h5', rows: [0, 6] }), 5);
      assert.deepEqual(kept.map((k) => [k.file, k.error.tag]), [[name(4), 'read-back-differs']]);
      assert.match(kept[0]!.error.message, new RegExp(`^${cam}/${name(4)}: its frames read back from sftp://.* differ from what was sent, so it is not deleted`));
      // what an earlier run committed: located by name, each chunk read once
      for (const f of files.slice(6)) assert.equal(await cleanup.earlier([f]), 1);
      assert.equal(await cleanup.earlier([files[4]!]), 0, 'the changed frame is kept when found committed too');
      await cleanup.close();
      assert.deepEqual(await readdir(cam), [name(4)]);
    });
  }

  test('batches: a batch file that does not read back at all keeps its sources, and the run goes on', async (t) => {
    const cam = await capture(t);
    const dest = await openDest('sftp', t, { extensions: false });
    const r = await cli(['upload', cam, dest.url('batches', 'run'), '--method', 'batches', '--batch', '100', ...READ, ...dest.flags]);
    assert.equal(r.code, 0, r.stderr);
    const stored = join(dest.local('batches', 'run'), 'frame000.h5');
    await writeFile(stored, (await readFile(stored)).subarray(0, 600));
    const { d, path } = await open(dest, 'batches', t);
    const kept: Array<{ file: string; error: FurError }> = [];
    const cleanup = new SourceCleanup(d, path, { ...DEFAULTS, method: 'batches', deleteSource: true }, (m) => assert.fail(m), (f, error) => kept.push({ file: f.name, error }));
    const files = Array.from({ length: FRAMES }, (_, i) => completed(cam, i));
    assert.equal(await cleanup.batch(files, { path: 'frame000.h5', rows: [0, FRAMES] }), 0);
    assert.deepEqual(kept.map((k) => k.file), files.map((f) => f.name));
    assert.match(kept[0]!.error.message, /: frame000\.h5 does not read back from sftp:\/\/.* \(.*\), so it is not deleted; fur verify SRC DEST shows what differs$/);
    assert.equal((await readdir(cam)).length, FRAMES);
  });

  test('files: a stored copy changed on the server keeps its source', async (t) => {
    const cam = await capture(t);
    const dest = await openDest('sftp', t, { extensions: false });
    const r = await cli(['upload', cam, dest.url('files', 'run'), '--method', 'files', ...READ, ...dest.flags]);
    assert.equal(r.code, 0, r.stderr);
    await damage(join(dest.local('files', 'run'), name(3)), 3);
    const { d, path } = await open(dest, 'files', t);
    assert.equal(await sameFile(d, name(2), join(cam, name(2))), true);
    assert.equal(await sameFile(d, name(3), join(cam, name(3))), false);
    const kept: string[] = [];
    const cleanup = new SourceCleanup(d, path, { ...DEFAULTS, method: 'files', deleteSource: true }, (m) => assert.fail(m), (f) => kept.push(f.name));
    for (let i = 0; i < FRAMES; i++) await cleanup.file(completed(cam, i));
    assert.deepEqual(kept, [name(3)]);
    assert.deepEqual(await readdir(cam), [name(3)]);
  });

  test('--delete-unsynced: deleted once committed, said at start; without --delete-source it is a usage error', async (t) => {
    const cam = await capture(t);
    const dest = await openDest('sftp', t, { extensions: false });
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', '--delete-unsynced', ...READ, ...dest.flags]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /a commit cannot be made durable here .*; --delete-unsynced: sources are deleted once committed, without reading their frames back$/m);
    assert.deepEqual(await readdir(cam), []);

    const alone = await cli(['upload', cam, dest.url('append', 'other'), '--delete-unsynced', ...READ, ...dest.flags]);
    assert.equal(alone.code, 2, alone.stderr);
    assert.equal(alone.lastLine, 'fur: --delete-unsynced only changes when --delete-source deletes a source; add --delete-source');
  });

  test('a server with fsync@openssh.com: nothing said, nothing read back', async (t) => {
    const cam = await capture(t);
    const dest = await openDest('sftp', t);
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', ...READ, ...dest.flags]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /durable/);
    const { d, path } = await open(dest, 'append', t);
    assert.equal(new SourceCleanup(d, path, { ...DEFAULTS, deleteSource: true }, () => undefined, () => undefined).readBack, false);
  });
});
