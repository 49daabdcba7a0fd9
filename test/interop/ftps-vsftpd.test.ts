/**
 * Issue 6's Done-when over FTPS, against Debian's vsftpd with TLS required for logins and data:
 * the real `fur` binary watching a camera, h5py (HDF5 1.10.8) reading what arrived in place.
 *  - 1,800 frames of 434×434×3 uint8 TIFF and 500 JPEG files, with batches and files, --delete-source;
 *  - append refused before connecting, with a way out;
 *  - a batches run killed at random three times, then finished: every frame once;
 *  - a server that refuses rename, a wrong password, a certificate for another name: one line each.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { noRetry, writeFrames } from '../pipeline/helpers.js';
import { makeCertificate } from '../../harness/certificate.js';
import { sortSequence } from '../../src/source/sequence.js';
import { run } from '../../harness/run.js';
import { FUR_BIN } from '../pipeline/helpers.js';
import { ALL_COMMANDS, startVsftpd, type Vsftpd } from '../../harness/vsftpd.js';
import { assertFiles, assertFrames, JPEG, killedThenFinished, pattern, TIFF, watchWhileCapturing } from './ftps-s3-check.js';
import { h5pyFrames } from './support/h5py.js';

const work = mkdtempSync(join(tmpdir(), 'fur-interop-ftps-'));
let ftp: Vsftpd;
before(async () => { ftp = await startVsftpd(); });
after(async () => {
  await ftp?.stop();
  rmSync(work, { recursive: true, force: true });
});

const flags = () => ['--password-env', ftp.passwordEnv, '--ca-file', ftp.caFile];

/** Batch files in a folder, in order (a sidecar per batch file, nothing half-written). */
function batchFiles(dir: string): string[] {
  const all = sortSequence(readdirSync(dir));
  const h5 = all.filter((n) => n.endsWith('.h5'));
  assert.deepEqual(all.filter((n) => !n.endsWith('.h5') && !n.endsWith('.h5.kerchunk.json')), [], `only batch files and their sidecars: ${all.join(', ')}`);
  return h5.map((n) => join(dir, n));
}

describe('FTPS (vsftpd, TLS required): batches and files', () => {
  for (const c of [TIFF(1800, 300, 601), JPEG(500, 300, 602)]) {
    const what = c.format === 'jpeg' ? '500 JPEG files' : '1,800 frames 434×434×3 TIFF';
    test(`batches: ${what} at ${c.fps} fps, --batch 100, --delete-source`, async () => {
      const { seconds } = await watchWhileCapturing(work, c, ftp.url(`batches-${c.format}`), 'batches', ['--batch', '100', ...flags()]);
      const files = batchFiles(join(ftp.home, `batches-${c.format}`));
      assert.equal(files.length, Math.ceil(c.frames / 100));
      assertFrames(await h5pyFrames(files), c);
      process.stderr.write(`# ftps batches ${what}: capture + upload ended after ${seconds.toFixed(1)} s\n`);
    });

    test(`files: ${what} at ${c.fps} fps arrive byte for byte, --delete-source`, async () => {
      const { seconds } = await watchWhileCapturing(work, c, ftp.url(`files-${c.format}`), 'files', flags());
      const dir = join(ftp.home, `files-${c.format}`);
      assertFiles(sortSequence(readdirSync(dir)), (n) => readFileSync(join(dir, n)), c);
      process.stderr.write(`# ftps files ${what}: capture + upload ended after ${seconds.toFixed(1)} s\n`);
    });
  }

  test('append is refused before connecting, pointing to batches', async () => {
    const r = await run(process.execPath, [FUR_BIN, 'upload', work, ftp.url('x.h5'), ...flags()]);
    assert.equal(r.code, 2, 'a method the destination cannot do is bad usage');
    assert.match(r.stderr.trim().split('\n').pop()!, /^fur: .*FTP cannot write into the middle of a file.*--method batches/);
  });
});

describe('FTPS: killed at random three times, then run to the end', () => {
  test('batches, 300 frames: every frame once, in order; sources deleted only once committed', async () => {
    const c = TIFF(300, 0, 603);
    const cam = mkdtempSync(join(work, 'camera-'));
    await writeFrames(cam, { ...c, dtype: 'uint8' }, 0, c.frames);
    const args = ['upload', cam, ftp.url('killed'), '--method', 'batches', '--batch', '10', '--delete-source', '--pattern', pattern(c), ...flags()];
    const { kills, killed } = await killedThenFinished(args, 3, [1, 3]);
    process.stderr.write(`# ftps batches killed after ${kills.join(', ')} (${killed} of 3 runs were still going)\n`);
    assert.equal(killed, 3, 'every kill landed inside a run (30 batches; a kill comes at most 3 commits and 100 ms into a run)');
    assertFrames(await h5pyFrames(batchFiles(join(ftp.home, 'killed'))), c);
    assert.deepEqual(readdirSync(cam), []);
  });
});

describe('FTPS refusals: one line, nothing under a final name, no source deleted', () => {
  const c = TIFF(20, 0, 604);

  async function attempt(dest: string, extra: string[]): Promise<{ line: string; cam: string }> {
    const cam = mkdtempSync(join(work, 'camera-'));
    await writeFrames(cam, { ...c, dtype: 'uint8' }, 0, c.frames);
    const r = await run(process.execPath, [FUR_BIN, 'upload', cam, dest, '--method', 'batches', '--batch', '10', '--delete-source', ...noRetry(), '--pattern', pattern(c), ...extra]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(readdirSync(cam).length, c.frames, 'no source deleted');
    return { line: r.stderr.trim().split('\n').pop()!, cam };
  }

  test('a server that refuses RNFR/RNTO', async () => {
    const strict = await startVsftpd({ commandsAllowed: ALL_COMMANDS.filter((x) => x !== 'RNFR' && x !== 'RNTO') });
    try {
      const { line } = await attempt(strict.url('norename'), ['--password-env', strict.passwordEnv, '--ca-file', strict.caFile]);
      assert.match(line, /^fur: rename .*norename.*550/);
      const left = readdirSync(join(strict.home, 'norename'));
      assert.deepEqual(left.filter((n) => !n.endsWith('.fur-partial')), [], `nothing under a final name: ${left}`);
    } finally {
      await strict.stop();
    }
  });

  test('a wrong password', async () => {
    process.env.FUR_INTEROP_WRONG = 'not-it';
    const { line } = await attempt(ftp.url('wrongpw'), ['--password-env', 'FUR_INTEROP_WRONG', '--ca-file', ftp.caFile]);
    assert.match(line, new RegExp(`^fur: .*login as ${ftp.user} refused \\(530`));
    assert.doesNotMatch(line, /not-it/);
  });

  test('a certificate for another name', async () => {
    const other = await startVsftpd({ certificate: makeCertificate({ dnsNames: ['archive.lab'] }) });
    try {
      const { line } = await attempt(other.url('name'), ['--password-env', other.passwordEnv, '--ca-file', other.caFile]);
      assert.match(line, /^fur: .*refused the server's TLS certificate: its certificate is for archive\.lab/);
    } finally {
      await other.stop();
    }
  });

  test('a certificate nobody said to trust', async () => {
    const { line } = await attempt(ftp.url('untrusted'), ['--password-env', ftp.passwordEnv]);
    assert.match(line, /^fur: .*self-signed.*--ca-file/);
  });
});
