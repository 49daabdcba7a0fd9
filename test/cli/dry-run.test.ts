/**
 * --dry-run: lists what would go where and how, leaves the destination as it was, and exits 0
 * when the destination is writable, 1 when it is not.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { expectedFrame, runCamera } from '../../src/source/camera.js';
import { furBin, jsonLines, localFrames, openDest, readH5, scratch } from '../pipeline/helpers.js';
import { dataset, resolvePath } from '../support/h5wasm.js';
import { openS3Dest, useTestAwsEnv } from '../pipeline/s3-dest.js';

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
  test('s3, a versioned bucket: the writability check leaves no object, no version and no delete marker behind', async (t) => {
    useTestAwsEnv();
    const cam = await camera(t);
    const d = await openS3Dest(t);
    d.server.setVersioning(d.bucket, true);
    for (const method of ['append', 'batches'] as const) {
      const r = await furBin(['upload', cam, d.url(method, 'run'), '--dry-run', '--method', method, ...d.flags]);
      assert.equal(r.code, 0, r.stderr.toString());
      assert.match(r.stdout.toString(), /reachable and writable/);
    }
    assert.deepEqual(d.server.versions(d.bucket), [], 'no version or delete marker');
    assert.deepEqual(d.server.keys(d.bucket), []);
    assert.equal((await localFrames(cam)).length, 12, 'no source deleted');
  });

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

  test('append of frames of 1 MiB and more: the chunks and batches listed are those the run makes', async (t) => {
    // frames of 3 MiB: in a new file a chunk each, and 21 to a commit (64 MiB at most), not
    // --batch's 100; in a file made with 4 frames to a chunk, which a run continues, 20
    const SHAPE = [1024, 1536];
    const read = ['--dtype', 'uint16', '--shape', SHAPE.join('x'), '--batch-seconds', '600'];
    const capture = async (name: string, frames: number, seed: number) => {
      const dir = await scratch(t, `fur-${name}-`);
      for (let i = 0; i < frames; i++) await writeFile(join(dir, `${name}${String(i).padStart(3, '0')}.raw`), expectedFrame(seed, i, 'uint16', SHAPE));
      return dir;
    };
    const dest = await openDest('file', t);
    // the file the second capture continues: 2 frames, 4 to a chunk
    const first = await capture('p', 2, 9);
    const made = await furBin(['upload', first, dest.url('append', 'continued'), '--chunk-frames', '4', ...read, ...dest.flags]);
    assert.equal(made.code, 0, made.stderr.toString());
    for (const [name, file, before, chunk, batches] of [
      ['a', 'new', [], 1, [21, 1]],
      ['b', 'continued', [[9, 2]], 4, [20, 2]],
    ] as const) {
      const src = await capture(name, 22, 1);
      const url = dest.url('append', file);
      const dry = await furBin(['upload', src, url, '--dry-run', '--json', ...read, ...dest.flags]);
      assert.equal(dry.code, 0, dry.stderr.toString());
      const [plan] = jsonLines(dry.stdout) as unknown as [{ layout: { chunk: number[] }; batchFrames: number; files: { name: string; batch: number }[] }];
      const run = await furBin(['upload', src, url, '--json', ...read, ...dest.flags]);
      assert.equal(run.code, 0, run.stderr.toString());
      const commits = jsonLines(run.stdout).filter((e) => e.type === 'commit').map((e) => e.names as string[]);
      const listed = plan.files.reduce<string[][]>((acc, f) => { (acc[f.batch] ??= []).push(f.name); return acc; }, []);
      assert.deepEqual(listed, commits, 'the files of each batch, as listed and as committed');
      assert.deepEqual(commits.map((c) => c.length), batches);
      assert.equal(plan.batchFrames, batches[0]);

      const back = await readH5(dest.local('append', file));
      const frames = dataset(back.docs[0]!, resolvePath(back.docs[0]!, '/data'));
      assert.deepEqual(plan.layout.chunk, frames.chunks, 'the chunks listed are the file\'s');
      assert.deepEqual(frames.chunks, [chunk, ...SHAPE]);
      const wanted = [...before.flatMap(([seed, n]) => Array.from({ length: n }, (_, i) => expectedFrame(seed, i, 'uint16', SHAPE))),
        ...Array.from({ length: 22 }, (_, i) => expectedFrame(1, i, 'uint16', SHAPE))];
      assert.equal(back.frames.length, wanted.length);
      back.frames.forEach((f, i) => assert.ok(Buffer.from(f).equals(Buffer.from(wanted[i]!)), `${file}: frame ${i}`));
    }
  });

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
