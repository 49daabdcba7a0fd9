/**
 * --dry-run: lists what would go where and how, leaves the destination as it was, and exits 0
 * when the destination is writable, 1 when it is not.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { runCamera } from '../../src/source/camera.js';
import { furBin, jsonLines, localFrames, openDest, scratch } from '../pipeline/helpers.js';

/** every file and folder under `root` with its size and content: what "unchanged" means */
async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) { out[relative(root, p) + '/'] = 'dir'; await walk(p); }
      else out[relative(root, p)] = (await readFile(p)).toString('base64');
    }
  };
  await walk(root);
  return out;
}

async function camera(t: Parameters<typeof scratch>[0], frames = 12): Promise<string> {
  const cam = await scratch(t, 'fur-camera-');
  await runCamera({ dir: cam, format: 'tiff', dtype: 'uint16', shape: [16, 24], seed: 3, frames });
  return cam;
}

describe('--dry-run', () => {
  for (const kind of ['file', 'sftp'] as const) {
    for (const method of ['append', 'batches', 'files'] as const) {
      test(`${kind} ${method}: lists each file and where it goes, writes nothing, exit 0`, async (t) => {
        const cam = await camera(t);
        const dest = await openDest(kind, t);
        // something already there, which must stay as it is
        await writeFile(join(dest.root, 'notes.txt'), 'earlier run\n');
        const before = await tree(dest.root);
        const r = await furBin(['upload', cam, dest.url(method, 'run'), '--dry-run', '--method', method, '--batch', '5', '--delete-source', ...dest.flags]);
        assert.equal(r.code, 0, r.stderr.toString());
        const out = r.stdout.toString();
        assert.deepEqual(await tree(dest.root), before, 'the destination is unchanged');
        assert.equal((await localFrames(cam)).length, 12, 'no source deleted');
        for (const f of await localFrames(cam)) assert.ok(out.includes(f), `lists ${f}`);
        assert.match(out, /reachable and writable/);
        assert.match(out, new RegExp(`method ${method}`));
        if (method !== 'files') {
          assert.match(out, /~12 frames in 3 batches of up to 5 frames/);
          assert.match(out, /\/data \(N, 16, 24\) uint16, chunks \(5, 16, 24\)/);
        }
        if (method === 'append') assert.match(out, /frame000006\.tif .*→ run\.h5 row 5 {2}\(batch 1\)/);
        if (method === 'batches') assert.match(out, /frame000007\.tif .*→ run\/frame000006\.h5 {2}\(batch 1\)/);
        if (method === 'files') assert.match(out, /frame000007\.tif .*→ run\/frame000007\.tif/);
      });
    }
  }

  test('a destination folder not there yet: said, and not made', async (t) => {
    const cam = await camera(t, 3);
    const dest = await openDest('file', t);
    const url = pathToFileURL(join(dest.root, 'new', 'deeper', 'run.h5')).href;
    const r = await furBin(['watch', cam, url, '--dry-run', '--json']);
    assert.equal(r.code, 0, r.stderr.toString());
    const [plan] = jsonLines(r.stdout);
    assert.equal(plan!.type, 'dry-run');
    assert.equal(plan!.writable, true);
    assert.deepEqual(plan!.create, [join(dest.root, 'new'), join(dest.root, 'new', 'deeper')]);
    assert.equal((plan!.files as unknown[]).length, 3);
    await assert.rejects(stat(join(dest.root, 'new')), 'not created');
  });

  test('a server that refuses writes: exit 1, saying so, nothing changed', async (t) => {
    const cam = await camera(t, 3);
    const dest = await openDest('sftp', t, { readOnly: true });
    await writeFile(join(dest.root, 'notes.txt'), 'earlier run\n');
    const before = await tree(dest.root);
    const r = await furBin(['upload', cam, dest.url('append', 'run'), '--dry-run', ...dest.flags]);
    assert.equal(r.code, 1, r.stderr.toString());
    assert.match(r.stdout.toString(), /not writable: .*permission/i);
    assert.deepEqual(await tree(dest.root), before);
  });

  test('a server that cannot be reached: exit 1', async (t) => {
    const cam = await camera(t, 2);
    const dest = await openDest('sftp', t);
    await dest.server!.close();
    const r = await furBin(['upload', cam, dest.url('append', 'run'), '--dry-run', ...dest.flags]);
    assert.equal(r.code, 1, r.stderr.toString());
    assert.match(r.stdout.toString(), /not reachable/);
  });
});
