/**
 * fur's methods over FTPS (ftp-srv with TLS, certificate made here): batches and files from a
 * camera with --delete-source, append refused with a way out, uploads cut mid-stream, runs killed
 * three times, and servers that lack rename or APPE.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCamera } from '../../src/source/camera.js';
import { makeCertificate } from '../../harness/certificate.js';
import {
  assertCapture, cli, localFrames, noRetry, readFlags, readStored, scratch, runKilledAfter, watchFlags, writeFrames, type Capture, type Method,
} from './helpers.js';
import { openFtpsDest, readBatches } from './s3-dest.js';

const CAPTURES: Array<Capture & { label: string }> = [
  { label: 'tiff uint8 32x48x3', format: 'tiff', dtype: 'uint8', shape: [32, 48, 3], seed: 3, frames: 40 },
  { label: 'jpeg → bytes (vlen)', format: 'jpeg', dtype: 'uint8', shape: [40, 50], seed: 7, frames: 30 },
];
const FTP_METHODS: Method[] = ['batches', 'files'];
const TIFF: Capture = { format: 'tiff', dtype: 'uint8', shape: [64, 64, 3], seed: 21, frames: 30 };

async function temporaries(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => n.includes('.fur-partial'));
}

for (const method of FTP_METHODS) {
  describe(`${method} → ftps`, () => {
    for (const c of CAPTURES) {
      test(`watch a camera writing ${c.frames} frames, ${c.label}, --delete-source`, async (t) => {
        const cam = await scratch(t, 'fur-camera-');
        const d = await openFtpsDest(t);
        const camera = runCamera({ dir: cam, format: c.format, dtype: c.format === 'jpeg' ? undefined : c.dtype as never, shape: c.shape, seed: c.seed,
          frames: c.frames, fps: 400, write: 'rename', stopFile: 'capture.done' });
        const r = await cli(['watch', cam, d.url(method, 'run1'), '--method', method, '--batch', '8', '--batch-seconds', '60',
          '--delete-source', ...readFlags(c), ...watchFlags(), ...d.flags]);
        await camera;
        assert.equal(r.code, 0, r.stderr);
        assertCapture(await readStored(d, method, 'run1'), c);
        assert.deepEqual(await localFrames(cam), [], 'every committed source deleted');
        assert.deepEqual(await temporaries(d.local(method, 'run1')), []);
      });
    }
  });
}

describe('append → ftps', () => {
  test('is refused before connecting as a usage error (exit 2), with the methods that work', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    const d = await openFtpsDest(t);
    await writeFrames(cam, TIFF, 0, 3);
    const r = await cli(['upload', cam, d.url('append', 'run'), '--delete-source', ...readFlags(TIFF), ...d.flags]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.lastLine, /^fur: ftps:\/\/.*FTP cannot write into the middle of a file.*use --method batches/);
    assert.equal((await localFrames(cam)).length, 3);
    assert.equal(d.ftps.stats.maxConnections, 0, 'no connection was even made');
  });
});

describe('ftps: uploads cut mid-stream resume with APPE', () => {
  for (const method of FTP_METHODS) {
    test(`${method}: exact result, nothing left over`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const d = await openFtpsDest(t);
      await writeFrames(cam, TIFF, 0, TIFF.frames);
      d.ftps.cutUploads(5_000, 3);
      const r = await cli(['upload', cam, d.url(method, 'cut'), '--method', method, '--batch', '10', '--delete-source', ...readFlags(TIFF), ...d.flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(d.ftps.stats.cuts, 3);
      assert.ok(d.ftps.stats.appends >= 3, 'continued with APPE');
      assertCapture(await readStored(d, method, 'cut'), TIFF);
      assert.deepEqual(await localFrames(cam), []);
      assert.deepEqual(await temporaries(d.local(method, 'cut')), []);
    });
  }
});

describe('ftps: killed three times, then run to the end', () => {
  const MANY: Capture = { ...TIFF, frames: 45 };
  // files: the same target code as over SFTP and file://; the interop tier kills both methods over vsftpd
  for (const method of ['batches'] as Method[]) {
    test(`${method}: every frame once, sources deleted only once committed`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const d = await openFtpsDest(t);
      await writeFrames(cam, MANY, 0, MANY.frames);
      const args = ['upload', cam, d.url(method, 'killed'), '--method', method, '--batch', '3', '--parallel', '2', '--delete-source', ...readFlags(MANY), ...d.flags];
      const at = [1, 2, 3].map(() => 1 + Math.floor(Math.random() * 3));
      let kills = 0;
      for (const k of at) if ((await runKilledAfter(args, k)).killed) kills++;
      t.diagnostic(`killed after commits ${at.join(', ')}: ${kills} runs killed`);
      // several commits may be in flight when a kill comes, so a later run may find little left
      assert.ok(kills >= 2, `only ${kills} runs were killed`);
      const r = await cli(args);
      assert.equal(r.code, 0, r.stderr);
      assertCapture(method === 'batches' ? await readBatches(d.local(method, 'killed')) : await readStored(d, method, 'killed'), MANY);
      assert.deepEqual(await localFrames(cam), []);
      assert.deepEqual(await temporaries(d.local(method, 'killed')), []);
    });
  }
});

describe('ftps refusals: one line, nothing under a final name, no source deleted', () => {
  for (const method of FTP_METHODS) {
    test(`${method}: a server without rename`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const d = await openFtpsDest(t, { without: ['RNFR', 'RNTO'] });
      await writeFrames(cam, TIFF, 0, 6);
      const r = await cli(['upload', cam, d.url(method, 'nr'), '--method', method, '--batch', '3', '--delete-source', ...noRetry(), ...readFlags(TIFF), ...d.flags]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.lastLine, /^fur: .*does not rename files/);
      const names = await readdir(d.local(method, 'nr'));
      assert.deepEqual(names.filter((n) => !n.includes('.fur-partial')), [], `only temporary names: ${names}`);
      assert.equal((await localFrames(cam)).length, 6);
    });

    test(`${method}: a server without APPE still gets every file whole`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const d = await openFtpsDest(t, { without: ['APPE'] });
      await writeFrames(cam, TIFF, 0, 6);
      d.ftps.cutUploads(5_000, 1);
      const r = await cli(['upload', cam, d.url(method, 'na'), '--method', method, '--batch', '3', '--delete-source', ...readFlags(TIFF), ...d.flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /does not support APPE, so the interrupted upload .* starts again from the beginning/);
      assertCapture(await readStored(d, method, 'na'), { ...TIFF, frames: 6 });
    });
  }

  test('wrong password, and a certificate for another name', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, TIFF, 0, 3);
    const d = await openFtpsDest(t);
    process.env.FUR_TEST_WRONG_FTP = 'nope';
    const r = await cli(['upload', cam, d.url('batches', 'x'), '--method', 'batches', '--delete-source', ...noRetry(), ...readFlags(TIFF),
      '--password-env', 'FUR_TEST_WRONG_FTP', '--ca-file', d.flags[3]!]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.lastLine, /^fur: .*login as lab refused .*FUR_TEST_WRONG_FTP/);
    assert.doesNotMatch(r.stderr, /nope/);

    const other = makeCertificate({ dnsNames: ['archive.lab'] });
    const e = await openFtpsDest(t, { certificate: other });
    const pem = join(await scratch(t), 'other.pem');
    await writeFile(pem, other.cert);
    const r2 = await cli(['upload', cam, e.url('batches', 'x'), '--method', 'batches', '--delete-source', ...noRetry(), ...readFlags(TIFF),
      '--password-env', e.flags[1]!, '--ca-file', pem]);
    assert.equal(r2.code, 1, r2.stderr);
    assert.match(r2.lastLine, /^fur: .*certificate is for archive\.lab/);
    assert.equal((await localFrames(cam)).length, 3);
  });
});
