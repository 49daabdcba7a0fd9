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
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { furBin, readFlags, writeFrames, type Capture } from '../pipeline/helpers.js';
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
});
