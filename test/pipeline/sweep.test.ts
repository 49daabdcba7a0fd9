/**
 * Temporaries a failed run left (the append file's first batch, batch files, uploaded files and
 * sidecars under their temporary names) are removed by the next run on that destination, and
 * reported in one line: how many, how many bytes. Temporaries of other append files in the same
 * folder are not the run's, and stay.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { FileDestination } from '../../src/transport/file.js';
import { sweepTemporaries } from '../../src/pipeline/sweep.js';
import {
  assertCapture, cli, DEST_KINDS, furBin, jsonLines, METHODS, openDest, readFlags, readStored, scratch, writeFrames, type Capture, type Method,
} from './helpers.js';

/** what an interrupted run of each method leaves (name → bytes), and what belongs to another run */
function leftovers(method: Method): { ours: Record<string, number>; others: Record<string, number> } {
  if (method === 'append') {
    return {
      ours: { '.run.h5.fur-partial': 6000, '.run.h5.kerchunk.json.fur-partial': 40 },
      // another capture's append file in the same folder, being created right now
      others: { '.other.h5.fur-partial': 700 },
    };
  }
  if (method === 'batches') return { ours: { 'frame0001.h5.fur-partial': 5000, '.frame0001.h5.kerchunk.json.fur-partial': 30, 'frame0006.h5.fur-partial': 0 }, others: {} };
  return { ours: { 'frame0003.tif.fur-partial': 1234 }, others: {} };
}

describe('temporaries a failed run left', () => {
  for (const method of METHODS) {
    for (const kind of DEST_KINDS) {
      test(`${method} → ${kind}: the next run removes them and says how many and how large`, async (t) => {
        const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [6, 5, 3], seed: 47, frames: 12 };
        const cam = await scratch(t, 'fur-camera-');
        const dest = await openDest(kind, t);
        const where = dest.local(method, 'run');
        const dir = method === 'append' ? dirname(where) : where;
        await mkdir(dir, { recursive: true });
        const { ours, others } = leftovers(method);
        for (const [name, size] of Object.entries({ ...ours, ...others })) await writeFile(join(dir, name), Buffer.alloc(size, 7));
        await writeFrames(cam, c, 0, 12);

        const r = await cli(['upload', cam, dest.url(method, 'run'), '--method', method, '--batch', '5', ...readFlags(c), ...dest.flags]);
        assert.equal(r.code, 0, r.stderr);
        const n = Object.keys(ours).length;
        const bytes = Object.values(ours).reduce((a, b) => a + b, 0);
        assert.match(r.stderr, new RegExp(`^fur: removed ${n} temporary files? an interrupted run left \\(${(bytes / 1e6).toFixed(1)} MB\\)$`, 'm'));
        const left = (await readdir(dir)).filter((x) => x.endsWith('.fur-partial')).sort();
        assert.deepEqual(left, Object.keys(others).sort(), 'only the temporaries of other files are left');
        assertCapture(await readStored(dest, method, 'run'), c);

        // a run with nothing to remove says nothing about it
        const again = await cli(['upload', cam, dest.url(method, 'run'), '--method', method, '--batch', '5', ...readFlags(c), ...dest.flags]);
        assert.equal(again.code, 0, again.stderr);
        assert.doesNotMatch(again.stderr, /temporary/);
      });
    }
  }

  test('--json reports the sweep as one event with the count and the bytes', async (t) => {
    const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [6, 5, 3], seed: 48, frames: 4 };
    const cam = await scratch(t, 'fur-camera-');
    const dest = await openDest('file', t);
    const where = dest.local('batches', 'run');
    await mkdir(where, { recursive: true });
    await writeFile(join(where, 'frame0009.h5.fur-partial'), Buffer.alloc(4321));
    await writeFile(join(where, '.frame0009.h5.kerchunk.json.fur-partial'), Buffer.alloc(11));
    await writeFrames(cam, c, 0, 4);
    const r = await furBin(['upload', cam, dest.url('batches', 'run'), '--method', 'batches', '--json', ...readFlags(c)]);
    assert.equal(r.code, 0, r.stderr.toString());
    const events = jsonLines(r.stdout);
    const swept = events.filter((e) => e.type === 'swept');
    assert.equal(swept.length, 1);
    assert.equal(swept[0]!.files, 2);
    assert.equal(swept[0]!.bytes, 4332);
    // before any frame is committed
    assert.ok(events.indexOf(swept[0]!) < events.findIndex((e) => e.type === 'commit'));
  });

  test('a long sweep reports its progress as it goes', async (t) => {
    const root = await scratch(t, 'fur-sweep-');
    for (let i = 0; i < 40; i++) await writeFile(join(root, `f${i}.tif.fur-partial`), Buffer.alloc(i));
    await writeFile(join(root, 'f0.tif'), Buffer.alloc(5));
    const dest = await FileDestination.open(root);
    const seen: Array<[number, number]> = [];
    const swept = await sweepTemporaries(dest, 'files', '.', { progress: (done, of) => seen.push([done, of]), progressEveryMs: 0 });
    assert.deepEqual(swept, { files: 40, bytes: (39 * 40) / 2 });
    assert.ok(seen.length >= 10, `${seen.length} progress reports`);
    assert.ok(seen.every(([done, of], i) => of === 40 && done < 40 && (i === 0 || done >= seen[i - 1]![0])), JSON.stringify(seen));
    assert.deepEqual(await readdir(root), ['f0.tif']);
  });
});
