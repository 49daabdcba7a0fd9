import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FileDestination } from '../../src/transport/file.js';
import { openDestination } from '../../src/transport/open.js';
import { putFile } from '../../src/transport/put.js';
import { pattern, rejectsWith, scratch, sftpFixture } from './helpers.js';

describe('putFile', () => {
  it('uploads over sftp under a temporary name, then renames over the old version', async () => {
    const fx = await sftpFixture();
    const local = await scratch();
    try {
      const data = pattern(3 * 1024 * 1024 + 5, 21);
      await writeFile(join(local.dir, 'frames.h5'), data);
      await writeFile(join(fx.root, 'frames.h5'), 'previous version');
      const d = await openDestination(fx.server.url('alice'), fx.options);
      const r = await putFile(d, join(local.dir, 'frames.h5'), 'frames.h5', { chunkSize: 100_000, maxUnacknowledged: 400_000 });
      assert.equal(r.bytes, data.length);
      assert.ok((await readFile(join(fx.root, 'frames.h5'))).equals(data));
      assert.deepEqual(await d.list('.'), ['frames.h5']);
      await d.close();
    } finally {
      await local.cleanup();
      await fx.cleanup();
    }
  });

  it('leaves the old version and no temporary file when the upload fails', async () => {
    const fx = await sftpFixture({ writeQuotaBytes: 1_000_000 });
    const local = await scratch();
    try {
      await writeFile(join(local.dir, 'big.h5'), pattern(2_000_000, 4));
      await writeFile(join(fx.root, 'big.h5'), 'previous version');
      const d = await openDestination(fx.server.url('alice'), fx.options);
      const e = await rejectsWith(putFile(d, join(local.dir, 'big.h5'), 'big.h5'), 'remote-write-failed');
      assert.match(e.message, /\/big\.h5\.part/);
      assert.equal(await readFile(join(fx.root, 'big.h5'), 'utf8'), 'previous version');
      assert.deepEqual(await d.list('.'), ['big.h5']);
      await d.close();
    } finally {
      await local.cleanup();
      await fx.cleanup();
    }
  });

  it('works on a file destination and names a missing local file', async () => {
    const s = await scratch();
    try {
      await writeFile(join(s.dir, 'a.bin'), 'abc');
      const d = await FileDestination.open(s.dir);
      await d.mkdirp('out');
      assert.deepEqual(await putFile(d, join(s.dir, 'a.bin'), 'out/a.bin'), { bytes: 3 });
      assert.equal(await readFile(join(s.dir, 'out', 'a.bin'), 'utf8'), 'abc');
      const e = await rejectsWith(putFile(d, join(s.dir, 'missing.bin'), 'out/m.bin'), 'not-found');
      assert.ok(e.message.includes(join(s.dir, 'missing.bin')));
    } finally {
      await s.cleanup();
    }
  });
});
