/**
 * The destination is the journal: a second run over a capture that went on stores only what is
 * new (no frame twice, none lost), and deletes sources an earlier run committed but kept.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { cameraFileName } from '../../src/source/camera.js';
import {
  assertCapture, cli, DEST_KINDS, localFrames, METHODS, openDest, readFlags, readStored, scratch, watchFlags, writeFrames, type Capture,
} from './helpers.js';

const CAPTURES: Capture[] = [
  { format: 'tiff', dtype: 'uint8', shape: [12, 10, 3], seed: 41, frames: 40 },
  { format: 'jpeg', dtype: 'uint8', shape: [30, 30], seed: 42, frames: 40 },
];

for (const method of METHODS) {
  for (const kind of DEST_KINDS) {
    describe(`${method} → ${kind}: resume`, () => {
      for (const c of CAPTURES) {
        test(`${c.format}: run, capture goes on, run again with --delete-source → every frame once, local folder empty`, async (t) => {
          const cam = await scratch(t, 'fur-camera-');
          const dest = await openDest(kind, t);
          const url = dest.url(method, 'run');
          const flags = ['--method', method, '--batch', '7', ...readFlags(c), ...dest.flags];

          await writeFrames(cam, c, 0, 20);
          const first = await cli(['upload', cam, url, ...flags]);
          assert.equal(first.code, 0, first.stderr);
          assertCapture(await readStored(dest, method, 'run'), c, 0, 20);
          assert.equal((await localFrames(cam)).length, 20, 'kept without --delete-source');

          await writeFrames(cam, c, 20, 40);
          const second = await cli(['upload', cam, url, '--delete-source', ...flags]);
          assert.equal(second.code, 0, second.stderr);
          if (method !== 'files') assert.match(second.stderr, /resuming: 20 frames already there/);
          assert.match(second.lastLine, /^fur: 20 frames from 20 files/, 'only the 20 new frames are sent');
          assertCapture(await readStored(dest, method, 'run'), c);
          assert.deepEqual(await localFrames(cam), [], 'committed-but-kept sources deleted on the second run');

          // a third run with nothing new changes nothing
          const third = await cli(['upload', cam, url, '--delete-source', ...flags]);
          assert.equal(third.code, 0, third.stderr);
          assertCapture(await readStored(dest, method, 'run'), c);
        });
      }
    });
  }
}

describe('resume while watching', () => {
  for (const method of METHODS) {
    test(`${method}: a watch stopped by --count, then a new watch over the same folder, continues where the first stopped`, async (t) => {
      const c: Capture = { format: 'npy', dtype: 'uint16', shape: [9, 7], seed: 43, frames: 30 };
      const cam = await scratch(t, 'fur-camera-');
      const dest = await openDest('sftp', t);
      await writeFrames(cam, c, 0, 20);
      const flags = ['--method', method, '--batch', '6', '--delete-source', ...readFlags(c), ...dest.flags];
      const first = await cli(['watch', cam, dest.url(method, 'w'), '--count', '13', '--completion', 'rename', ...flags]);
      assert.equal(first.code, 0, first.stderr);
      assertCapture(await readStored(dest, method, 'w'), c, 0, 13);
      assert.deepEqual(await localFrames(cam), Array.from({ length: 7 }, (_, k) => cameraFileName(14 + k, 'npy')));

      const second = cli(['watch', cam, dest.url(method, 'w'), ...watchFlags(), ...flags]);
      await writeFrames(cam, c, 20, 30);
      await import('node:fs/promises').then((fs) => fs.writeFile(`${cam}/capture.done`, ''));
      const r = await second;
      assert.equal(r.code, 0, r.stderr);
      assertCapture(await readStored(dest, method, 'w'), c);
      assert.deepEqual(await localFrames(cam), []);
      if (method !== 'append') {
        assert.deepEqual((await readdir(dest.local(method, 'w'))).filter((n) => n.endsWith('.fur-partial')), []);
      }
    });
  }
});

describe('a new capture that reuses file names', () => {
  for (const method of METHODS) {
    for (const kind of DEST_KINDS) {
      test(`${method} → ${kind}: is neither taken for the stored one nor deleted; it is kept and reported (exit 3)`, async (t) => {
        const a: Capture = { format: 'tiff', dtype: 'uint8', shape: [8, 10, 3], seed: 44, frames: 6 };
        const b: Capture = { ...a, seed: 45, frames: 8 };
        const cam = await scratch(t, 'fur-camera-');
        const dest = await openDest(kind, t);
        const flags = ['upload', cam, dest.url(method, 'run'), '--method', method, '--delete-source', ...readFlags(a), ...dest.flags];
        await writeFrames(cam, a, 0, 6);
        assert.equal((await cli(flags)).code, 0);
        assert.deepEqual(await localFrames(cam), []);

        // the next capture starts again at frame000001, with other frames, and goes two files further
        await writeFrames(cam, b, 0, 8);
        const r = await cli(flags);
        assert.equal(r.code, 3, r.stderr);
        // said once as it happens, the rest counted; all six listed again at the end
        const said = r.stderr.split('\n').filter((l) => l.startsWith('fur: kept ') && l.includes('a capture that reuses file names needs a new destination'));
        assert.equal(said.length, 1, r.stderr);
        assert.match(r.stderr, /^fur: kept 5 more files for the same reason \(name-reused\); -v lists each$/m);
        const kept = r.stderr.split('\n').filter((l) => l.startsWith('  ') && l.includes('a capture that reuses file names needs a new destination'));
        assert.equal(kept.length, 6, r.stderr);
        assert.ok(kept[0]!.includes(`${cam}/${cameraFileName(1, 'tiff')}`), kept[0]);
        // the stored frames are still the first capture's; the new names went on, the reused ones stayed local
        const stored = await readStored(dest, method, 'run');
        assertCapture({ frames: stored.frames.slice(0, 6), names: stored.names.slice(0, 6), pages: stored.pages.slice(0, 6), docs: [] }, a);
        assertCapture({ frames: stored.frames.slice(6), names: stored.names.slice(6), pages: stored.pages.slice(6), docs: [] }, b, 6, 2);
        assert.deepEqual(await localFrames(cam), Array.from({ length: 6 }, (_, k) => cameraFileName(k + 1, 'tiff')));
      });
    }
  }
});

describe('a run stopped while writing a sidecar', () => {
  for (const method of ['append', 'batches'] as const) {
    for (const kind of DEST_KINDS) {
      test(`${method} → ${kind}: the next run, with nothing new to send, writes the missing sidecar and leaves no temporary`, async (t) => {
        const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [6, 5, 3], seed: 46, frames: 12 };
        const cam = await scratch(t, 'fur-camera-');
        const dest = await openDest(kind, t);
        const flags = ['upload', cam, dest.url(method, 'run'), '--method', method, '--batch', '5', ...readFlags(c), ...dest.flags];
        await writeFrames(cam, c, 0, 12);
        assert.equal((await cli(flags)).code, 0);

        // what a kill leaves: a half-written temporary beside a sidecar that is stale (append, whose
        // sidecar follows the file) or missing (batches, whose batch was renamed before its sidecar)
        const where = dest.local(method, 'run');
        const dir = method === 'append' ? dirname(where) : where;
        const h5 = method === 'append' ? where : join(where, (await readdir(where)).filter((n) => n.endsWith('.h5')).sort()[1]!);
        const sidecar = `${h5}.kerchunk.json`;
        const temp = join(dir, `.${basename(sidecar)}.fur-partial`);
        const complete = await readFile(sidecar, 'utf8');
        if (method === 'append') await writeFile(sidecar, '{"version":1,"refs":{}}');
        else await rm(sidecar);
        await writeFile(temp, complete.slice(0, 40));

        const r = await cli(flags);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.lastLine, /^fur: 0 frames/, 'nothing is sent again');
        assert.deepEqual(JSON.parse(await readFile(sidecar, 'utf8')), JSON.parse(complete), 'the sidecar is the complete one again');
        assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.fur-partial')), []);
        assertCapture(await readStored(dest, method, 'run'), c);
      });
    }
  }
});
