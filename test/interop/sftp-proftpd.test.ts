/**
 * fur against ProFTPD's mod_sftp (Debian's proftpd-core and proftpd-mod-crypto, unpacked, not
 * installed):
 *
 *  - the pipeline's cases (support/server-matrix.ts); mod_sftp announces no limits@openssh.com,
 *    so fur writes 32 KiB requests;
 *  - with ProFTPD's own default AllowOverwrite off, no file that exists can be opened for writing
 *    again: `append` (which writes commit metadata through a second handle) fails at once with a
 *    message naming the setting, and `batches` and `files` still work.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { furBin, readFlags, writeFrames, type Capture } from '../pipeline/helpers.js';
import { sortSequence } from '../../src/source/sequence.js';
import { assertFrames, pattern, type Cam } from './ftps-s3-check.js';
import { h5pyFrames } from './support/h5py.js';
import { serverMatrix } from './support/server-matrix.js';
import { announced, startProftpdSftp, type SftpServer } from './support/sftp-servers.js';

describe('ProFTPD mod_sftp', () => {
  const server = serverMatrix(() => startProftpdSftp(), { durable: true });

  test('without limits@openssh.com, fur writes 32 KiB requests; fsync@openssh.com and posix-rename are used', async () => {
    const { capabilities } = await announced(server());
    assert.ok(capabilities.maxWriteSize! <= 32 * 1024, `${capabilities.maxWriteSize} bytes a request`);
    assert.equal(capabilities.fsync, true);
    assert.equal(capabilities.atomicReplace, true);
  });
});

describe('ProFTPD mod_sftp with AllowOverwrite off', () => {
  const c: Capture = { format: 'tiff', dtype: 'uint8', shape: [16, 16], seed: 402, frames: 6 };
  let server: SftpServer;
  let work: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'fur-overwrite-'));
    server = await startProftpdSftp({ allowOverwrite: false });
  });
  after(async () => {
    await server?.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  for (const method of ['append', 'batches', 'files'] as const) {
    test(`${method}: ${method === 'append' ? 'refused at once, the setting named' : 'every frame stored'}`, async () => {
      const src = join(work, method);
      mkdirSync(src);
      await writeFrames(src, c, 0, c.frames);
      const target = join(server.root, method === 'append' ? 'run.h5' : method);
      const r = await furBin(['upload', src, server.url(target), '--method', method, '--give-up-after', '5', ...readFlags(c), ...server.flags]);
      if (method !== 'append') {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(readdirSync(target).filter((n) => /\.(h5|tif)$/.test(n)).length, method === 'files' ? c.frames : 1);
        return;
      }
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /fur: open for writing .*\.run\.h5\.fur-partial on sftp:\/\/.*: the server refuses to open a file for writing once it exists \(ProFTPD: AllowOverwrite off\); --method append needs that: have it allowed \(AllowOverwrite on\), or use --method batches\n$/);
      assert.doesNotMatch(r.stderr, /unreachable|retrying/, 'not retried: waiting cannot help');
    });
  }

  test('the lease is renewed although its record cannot be opened for writing again: a watch outlives three times its --lease-ttl', async () => {
    // renewed every second (a third of 3 s); each renewal removes the record and creates it anew
    const cam: Cam = { format: 'tiff', dtype: 'uint8', shape: [16, 16], seed: 403, frames: 12, fps: 0 };
    const src = join(work, 'renewed');
    mkdirSync(src);
    await writeFrames(src, cam, 0, cam.frames);
    const target = join(server.root, 'renewed');
    const stop = setTimeout(() => writeFileSync(join(src, 'capture.done'), ''), 9000);
    const r = await furBin(['watch', src, server.url(target), '--method', 'batches', '--batch', '4', '--lease-ttl', '3', '--delete-source',
      '--pattern', pattern(cam), '--stop-file', 'capture.done', '--give-up-after', '5', ...server.flags]).finally(() => clearTimeout(stop));
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /lease/i, 'nothing to say about the lease');
    assertFrames(await h5pyFrames(sortSequence(readdirSync(target).filter((n) => n.endsWith('.h5'))).map((n) => join(target, n))), cam);
    assert.deepEqual(readdirSync(target).filter((n) => n.includes('fur-lease')), [], 'the lease is released');
    assert.deepEqual(readdirSync(src), ['capture.done'], 'every frame deleted once committed');
  });
});
