/**
 * Bad input, one case each: the run ends with a one-line message that names the file or the
 * setting to fix, the documented exit code (1 failed, 2 bad usage, 3 some files kept), and no
 * local source deleted unless its frames are stored.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cameraFileName, encodeFile, expectedFrame, runCamera } from '../../src/source/camera.js';
import {
  assertCapture, cli, localFrames, noRetry, openDest, PASSWORD_ENV, readStored, scratch, type Capture, type CliResult, type Dest,
} from './helpers.js';

const TIFF: Capture = { format: 'tiff', dtype: 'uint8', shape: [16, 20, 3], seed: 31, frames: 6 };

async function capture(t: Parameters<typeof scratch>[0], c: Capture = TIFF): Promise<{ cam: string; files: string[] }> {
  const cam = await scratch(t, 'fur-camera-');
  await runCamera({ dir: cam, format: c.format, dtype: c.dtype as never, shape: c.shape, seed: c.seed, frames: c.frames });
  return { cam, files: await localFrames(cam) };
}

/** The run's error: one line, after `fur: `, naming what to fix. */
function assertFailure(r: CliResult, code: number, ...mentions: string[]): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.match(r.lastLine, /^fur: \S/, 'the last line is fur\'s message');
  for (const m of mentions) assert.ok(r.lastLine.includes(m), `message should name ${m}: ${r.lastLine}`);
}

async function assertNothingDeleted(cam: string, files: string[]): Promise<void> {
  assert.deepEqual(await localFrames(cam), files, 'no source deleted');
}

describe('bad source files', () => {
  test('a zero-length file: kept and named, the other frames stored and deleted, exit 3', async (t) => {
    const { cam } = await capture(t);
    const dest = await openDest('sftp', t);
    const empty = join(cam, cameraFileName(3, 'tiff'));
    await writeFile(empty, '');
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', ...dest.flags]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith(`fur: kept ${empty}: `) && l.includes('empty')).length, 1, `reported once as it happened: ${r.stderr}`);
    assert.ok(r.stderr.includes(`  ${empty}: `), `listed among the kept files at the end: ${r.stderr}`);
    const stored = await readStored(dest, 'append', 'run');
    assert.deepEqual(stored.names, [1, 2, 4, 5, 6].map((k) => cameraFileName(k, 'tiff')));
    for (const [k, i] of [0, 1, 3, 4, 5].entries()) assert.deepEqual(stored.frames[k], expectedFrame(TIFF.seed, i, 'uint8', TIFF.shape), `frame ${i}`);
    assert.deepEqual(await localFrames(cam), [cameraFileName(3, 'tiff')]);
  });

  test('a zero-length file, --on-mismatch stop: exit 1, named, nothing deleted', async (t) => {
    const { cam, files } = await capture(t);
    const dest = await openDest('sftp', t);
    const empty = join(cam, cameraFileName(3, 'tiff'));
    await writeFile(empty, '');
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--on-mismatch', 'stop', '--delete-source', ...dest.flags]);
    assertFailure(r, 1, empty, 'empty');
    assert.equal(r.stderr.split('\n').filter((l) => l.includes('empty')).length, 1, `reported once: ${r.stderr}`);
    await assertNothingDeleted(cam, files);
  });

  test('a truncated .npy: kept and named, the other frames stored, exit 3', async (t) => {
    const c: Capture = { format: 'npy', dtype: 'float32', shape: [8, 8], seed: 32, frames: 5 };
    const { cam } = await capture(t, c);
    const dest = await openDest('file', t);
    const cut = join(cam, cameraFileName(4, 'npy'));
    await truncate(cut, (await stat(cut)).size - 10);
    const r = await cli(['upload', cam, dest.url('batches', 'run'), '--method', 'batches', '--delete-source', ...dest.flags]);
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.split('\n').some((l) => l.startsWith(`fur: kept ${cut}: `) && /truncated|bytes/.test(l)), r.stderr);
    const stored = await readStored(dest, 'batches', 'run');
    assert.deepEqual(stored.names, [1, 2, 3, 5].map((k) => cameraFileName(k, 'npy')));
    for (const [k, i] of [0, 1, 2, 4].entries()) assert.deepEqual(stored.frames[k], expectedFrame(c.seed, i, 'float32', c.shape), `frame ${i}`);
    assert.deepEqual(await localFrames(cam), [cameraFileName(4, 'npy')]);
  });

  /** Replaces frame 4 by a TIFF of another shape. */
  async function withOddFrame(cam: string): Promise<string> {
    const odd = join(cam, cameraFileName(4, 'tiff'));
    await writeFile(odd, encodeFile('tiff', 'uint8', [10, 10, 3], [expectedFrame(1, 0, 'uint8', [10, 10, 3])]));
    return odd;
  }

  test('a TIFF whose shape differs, --on-mismatch stop: exit 1, both layouts named, nothing deleted', async (t) => {
    const { cam, files } = await capture(t);
    const odd = await withOddFrame(cam);
    const dest = await openDest('sftp', t);
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--on-mismatch', 'stop', '--delete-source', ...dest.flags]);
    assertFailure(r, 1, odd, 'uint8[10x10x3]', 'uint8[16x20x3]', cameraFileName(1, 'tiff'));
    await assertNothingDeleted(cam, files);
  });

  test('a TIFF whose shape differs half-way through a batch, --on-mismatch stop: the batch is not committed, the file shows the batches before it, a fixed capture resumes', async (t) => {
    const { cam, files } = await capture(t);
    await withOddFrame(cam);
    const dest = await openDest('sftp', t);
    const flags = ['upload', cam, dest.url('append', 'run'), '--batch', '2', '--on-mismatch', 'stop', '--delete-source', ...dest.flags];
    const r = await cli(flags);
    assert.equal(r.code, 1, r.stderr);
    // frames 1-2 were committed (and deleted); frame 3 went into the file with the failed batch,
    // uncommitted: no frame of it may show, and every frame shown has its name
    const stored = await readStored(dest, 'append', 'run');
    assertCapture(stored, TIFF, 0, 2);
    assert.deepEqual(await localFrames(cam), files.slice(2));
    // the camera's real frame 4 back in place: the next run stores frames 3-6, each once
    await writeFile(join(cam, cameraFileName(4, 'tiff')), encodeFile('tiff', 'uint8', TIFF.shape, [expectedFrame(TIFF.seed, 3, 'uint8', TIFF.shape)]));
    const again = await cli(flags);
    assert.equal(again.code, 0, again.stderr);
    assertCapture(await readStored(dest, 'append', 'run'), TIFF);
    assert.deepEqual(await localFrames(cam), []);
  });

  test('a TIFF whose shape differs, --on-mismatch skip: exit 3, the rest stored and deleted, the odd file kept', async (t) => {
    const { cam } = await capture(t);
    const odd = await withOddFrame(cam);
    const dest = await openDest('sftp', t);
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--on-mismatch', 'skip', '--delete-source', ...dest.flags]);
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.split('\n').some((l) => l.startsWith(`fur: kept ${odd}: `) && l.includes('uint8[10x10x3]')), r.stderr);
    assert.match(r.lastLine, /5 frames from 5 files.*1 file kept because it could not/);
    const stored = await readStored(dest, 'append', 'run');
    assert.deepEqual(stored.names, [1, 2, 3, 5, 6].map((k) => cameraFileName(k, 'tiff')));
    for (const [k, i] of [0, 1, 2, 4, 5].entries()) assert.deepEqual(stored.frames[k], expectedFrame(TIFF.seed, i, 'uint8', TIFF.shape), `frame ${i}`);
    assert.deepEqual(await localFrames(cam), [cameraFileName(4, 'tiff')]);
  });

  test('a raw file without --dtype/--shape: exit 2 (the command line lacks them), the settings named, nothing deleted', async (t) => {
    const { cam, files } = await capture(t, { format: 'raw', dtype: 'uint16', shape: [4, 6], seed: 33, frames: 3 });
    const dest = await openDest('file', t);
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source']);
    assertFailure(r, 2, '--dtype', '--shape', cameraFileName(1, 'raw'));
    await assertNothingDeleted(cam, files);
  });
});

describe('bad settings (exit 2, before anything is read or sent)', () => {
  const cases: Array<[string, string[], string[]]> = [
    ['unknown --dtype', ['--dtype', 'uint7', '--shape', '4x4'], ['--dtype', 'uint7']],
    ['bad --shape', ['--dtype', 'uint8', '--shape', '4xfour'], ['--shape', '4xfour']],
    ['bad --compression', ['--compression', 'lz4'], ['--compression', 'lz4']],
    ['bad --compression level', ['--compression', 'gzip:0'], ['--compression', 'gzip:0']],
    ['bad --batch', ['--batch', '0'], ['--batch']],
    ['bad --chunk-frames', ['--chunk-frames', '2.5'], ['--chunk-frames']],
    ['bad --dataset', ['--dataset', 'data'], ['--dataset']],
    ['unknown --method', ['--method', 'rsync'], ['rsync']],
  ];
  for (const [what, flags, mentions] of cases) {
    test(what, async (t) => {
      const { cam, files } = await capture(t);
      const dest = await openDest('file', t);
      const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', ...flags]);
      assert.equal(r.code, 2, r.stderr);
      const message = r.stderr.split('\n').find((l) => l.startsWith('fur: ') || l.startsWith('error: '));
      assert.ok(message, r.stderr);
      for (const m of mentions) assert.ok(message.includes(m), `${message} should name ${m}`);
      await assertNothingDeleted(cam, files);
      assert.deepEqual(await readdir(dest.root), [], 'nothing written');
    });
  }

  test('a destination URL that does not parse', async (t) => {
    const { cam, files } = await capture(t);
    for (const url of ['gopher://archive/data/run.h5', 'sftp:///data/run.h5', 'sftp://lab@127.0.0.1:99999/run.h5']) {
      const r = await cli(['upload', cam, url, '--delete-source']);
      assertFailure(r, 2, url.slice(0, 12));
    }
    const r = await cli(['upload', cam, 'file:///tmp/', '--delete-source']);
    assertFailure(r, 2, '--method append', 'HDF5 file');
    await assertNothingDeleted(cam, files);
  });
});

describe('the destination refuses', () => {
  async function failing(t: Parameters<typeof scratch>[0], dest: Dest, extra: string[] = [], method = 'append'): Promise<{ r: CliResult; cam: string; files: string[] }> {
    const { cam, files } = await capture(t);
    const r = await cli(['upload', cam, dest.url(method as 'append', 'run'), '--method', method, '--delete-source', ...dest.flags, ...extra]);
    return { r, cam, files };
  }

  test('wrong password: exit 1, names the login and the variable', async (t) => {
    const dest = await openDest('sftp', t);
    const right = process.env[PASSWORD_ENV];
    process.env.FUR_WRONG_PASSWORD = 'not-the-password';
    const flags = dest.flags.map((f) => (f === PASSWORD_ENV ? 'FUR_WRONG_PASSWORD' : f));
    const { cam, files } = await capture(t);
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', ...flags]);
    assertFailure(r, 1, 'lab@127.0.0.1', '$FUR_WRONG_PASSWORD');
    assert.ok(!r.stderr.includes('not-the-password'), 'the password is never printed');
    assert.equal(process.env[PASSWORD_ENV], right);
    await assertNothingDeleted(cam, files);
  });

  test('unknown host key without --accept-new-host-key: exit 1; with it, the key is recorded and the upload works', async (t) => {
    const dest = await openDest('sftp', t);
    const knownHosts = join(await scratch(t), 'known_hosts');
    await writeFile(knownHosts, '');
    const flags = ['--password-env', PASSWORD_ENV, '--known-hosts', knownHosts];
    const { cam, files } = await capture(t);
    const r = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', ...flags]);
    assertFailure(r, 1, '127.0.0.1', knownHosts, '--accept-new-host-key');
    await assertNothingDeleted(cam, files);
    assert.equal(await readFile(knownHosts, 'utf8'), '', 'an unknown key is not recorded without consent');

    const ok = await cli(['upload', cam, dest.url('append', 'run'), '--delete-source', '--accept-new-host-key', ...flags]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok((await readFile(knownHosts, 'utf8')).includes(dest.server!.hostKeyLine.split(' ').slice(1).join(' ')), 'key recorded');
    assertCapture(await readStored(dest, 'append', 'run'), TIFF);
    assert.deepEqual(await localFrames(cam), []);
  });

  for (const method of ['append', 'batches', 'files'] as const) {
    test(`${method}: remote permission denied: exit 1, nothing deleted`, async (t) => {
      const dest = await openDest('sftp', t, { readOnly: true });
      const { r, cam, files } = await failing(t, dest, [], method);
      assertFailure(r, 1, 'permission denied');
      await assertNothingDeleted(cam, files);
    });

    test(`${method}: remote disk full: exit 1, says so, nothing deleted`, async (t) => {
      const dest = await openDest('sftp', t, { writeQuotaBytes: 500 });
      const { r, cam, files } = await failing(t, dest, noRetry(), method);
      assertFailure(r, 1);
      assert.match(r.lastLine, /full|quota/);
      await assertNothingDeleted(cam, files);
    });
  }

  test('an append file that fur did not write: exit 1, names it', async (t) => {
    const dest = await openDest('file', t);
    await writeFile(dest.local('append', 'run'), 'not an HDF5 file, but a lab notebook');
    const { r, cam, files } = await failing(t, dest);
    assertFailure(r, 1, 'run.h5', 'new file name');
    await assertNothingDeleted(cam, files);
  });
});
