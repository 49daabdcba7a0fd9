/**
 * fur against dropbear (Debian's dropbear-bin, 24 KiB channel window) running OpenSSH's
 * sftp-server: the pipeline's cases (support/server-matrix.ts), and what fur makes of what it
 * announces.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { serverMatrix } from './support/server-matrix.js';
import { announced, startDropbear } from './support/sftp-servers.js';

describe('dropbear + OpenSSH sftp-server', () => {
  const server = serverMatrix(() => startDropbear(), { durable: true });

  test('a 24 KiB channel window; sftp-server\'s limits@openssh.com, fsync@openssh.com and posix-rename', async () => {
    const { capabilities, window } = await announced(server());
    assert.ok(window <= 24 * 1024, `a ${window}-byte window`);
    assert.ok(capabilities.maxWriteSize! > 64 * 1024, `${capabilities.maxWriteSize} bytes a request`);
    assert.equal(capabilities.fsync, true);
    assert.equal(capabilities.atomicReplace, true);
  });
});
