import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { FileDestination } from '../../src/transport/file.js';
import { openDestination } from '../../src/transport/open.js';
import { destinationContract } from './contract.js';
import { rejectsWith, scratch } from './helpers.js';

destinationContract('file', async () => {
  const { dir, cleanup } = await scratch();
  return { dest: await FileDestination.open(dir), localRoot: dir, cleanup };
});

describe('file destination', () => {
  it('opens from a file:// URL and from a plain path, with full capabilities', async () => {
    const { dir, cleanup } = await scratch();
    try {
      const a = await openDestination(pathToFileURL(dir).href);
      const b = await openDestination(dir);
      assert.equal(a.url, pathToFileURL(dir).href);
      assert.equal(b.url, a.url);
      assert.deepEqual(a.capabilities, { positionalWrite: true, rename: true, fsync: true, atomicReplace: true });
    } finally {
      await cleanup();
    }
  });

  it('refuses a missing root (an unmounted share) unless asked to create it', async () => {
    const { dir, cleanup } = await scratch();
    try {
      const missing = join(dir, 'not-mounted');
      const e = await rejectsWith(openDestination(missing), 'not-found');
      assert.match(e.message, /not-mounted.*mount the share/);
      const d = await openDestination(missing, { createRoot: true });
      assert.equal((await d.stat('.'))?.isDirectory, true);
      await writeFile(join(dir, 'a-file'), 'x');
      await rejectsWith(openDestination(join(dir, 'a-file')), 'not-a-directory');
    } finally {
      await cleanup();
    }
  });

  it('poisons a file after a failed write: flush and close report the first error', async () => {
    const { dir, cleanup } = await scratch();
    try {
      await writeFile(join(dir, 'ro.bin'), 'abc');
      const d = await FileDestination.open(dir);
      const f = await d.openRead('ro.bin'); // read-only handle: the write fails with EBADF
      const first = f.write(0, Buffer.from('x'));
      const e = await rejectsWith(first, 'io-failed');
      assert.match(e.message, /ro\.bin/);
      await assert.rejects(f.flush(), (err) => err === e);
      await assert.rejects(f.write(5, Buffer.from('y')), (err) => err === e);
      await assert.rejects(f.close(), (err) => err === e);
    } finally {
      await cleanup();
    }
  });
});
