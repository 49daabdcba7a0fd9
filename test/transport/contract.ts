// Behaviour every Destination must show, run against each kind by its own test file.
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Destination } from '../../src/transport/destination.js';
import { pattern, rejectsWith, shuffledPieces } from './helpers.js';

export interface ContractSubject {
  dest: Destination;
  /** the local directory holding what the destination stores, to check bytes independently */
  localRoot: string;
  cleanup(): Promise<void>;
}

export function destinationContract(name: string, open: () => Promise<ContractSubject>): void {
  describe(`${name}: Destination contract`, () => {
    let s: ContractSubject;
    before(async () => { s = await open(); });
    after(async () => { await s.dest.close(); await s.cleanup(); });

    it('stores 4 MiB written as ~300 shuffled writes in flight at once', async () => {
      const data = pattern(4 * 1024 * 1024, 7);
      const pieces = shuffledPieces(data, 28_000, 11);
      assert.ok(pieces.length > 250, `only ${pieces.length} pieces`);
      const f = await s.dest.openWrite('random.bin', { truncate: true });
      // Issue every write before awaiting any: the sink contract allows it and pipelining needs it.
      const writes = pieces.map((p) => f.write(p.offset, p.bytes));
      await f.flush();
      await Promise.all(writes);
      assert.equal(await f.size(), data.length);
      const back = await f.read(0, data.length);
      assert.equal(back.length, data.length);
      assert.ok(Buffer.from(back).equals(data), 'read-back differs from what was written');
      const part = await f.read(1_000_003, 77_777);
      assert.ok(Buffer.from(part).equals(data.subarray(1_000_003, 1_000_003 + 77_777)));
      const pastEnd = await f.read(data.length - 10, 100);
      assert.ok(Buffer.from(pastEnd).equals(data.subarray(data.length - 10)), 'a read past the end returns what exists');
      await f.close();
      const onDisk = await readFile(join(s.localRoot, 'random.bin'));
      assert.ok(onDisk.equals(data), 'bytes on disk differ from what was written');
    });

    it('close follows the writes issued before it: closed without awaiting them, every byte is stored', async () => {
      const data = pattern(1024 * 1024 + 13, 5);
      const f = await s.dest.openWrite('unawaited.bin', { truncate: true });
      const writes = shuffledPieces(data, 40_000, 3).map((p) => f.write(p.offset, p.bytes));
      await f.close();
      await Promise.all(writes);
      assert.ok((await readFile(join(s.localRoot, 'unawaited.bin'))).equals(data), 'bytes on disk differ from what was written');
    });

    it('keeps existing bytes unless asked to truncate', async () => {
      await writeFile(join(s.localRoot, 'keep.bin'), Buffer.from('0123456789'));
      const f = await s.dest.openWrite('keep.bin');
      await f.write(8, Buffer.from('ABCD'));
      await f.close();
      assert.equal(await readFile(join(s.localRoot, 'keep.bin'), 'latin1'), '01234567ABCD');
      const g = await s.dest.openWrite('keep.bin', { truncate: true });
      assert.equal(await g.size(), 0);
      await g.write(0, Buffer.from('new'));
      await g.close();
      assert.equal(await readFile(join(s.localRoot, 'keep.bin'), 'latin1'), 'new');
    });

    it('rename replaces an existing target and removes the source', async () => {
      await writeFile(join(s.localRoot, 'final.h5'), 'old contents');
      const f = await s.dest.openWrite('final.h5.part', { truncate: true });
      await f.write(0, Buffer.from('new contents'));
      await f.sync?.();
      await f.close();
      await s.dest.rename('final.h5.part', 'final.h5');
      assert.equal(await readFile(join(s.localRoot, 'final.h5'), 'utf8'), 'new contents');
      assert.equal(await s.dest.stat('final.h5.part'), null);
    });

    it('mkdirp creates every missing level, is idempotent, and refuses to go through a file', async () => {
      await s.dest.mkdirp('deep/er/still');
      await s.dest.mkdirp('deep/er/still');
      const st = await s.dest.stat('deep/er/still');
      assert.equal(st?.isDirectory, true);
      await writeFile(join(s.localRoot, 'deep', 'plain'), 'x');
      const e = await rejectsWith(s.dest.mkdirp('deep/plain/sub'), 'not-a-directory');
      assert.match(e.message, /plain/);
    });

    it('lists names sorted, and stats files and directories', async () => {
      await mkdir(join(s.localRoot, 'listing', 'sub'), { recursive: true });
      for (const n of ['b.h5', 'a.h5', 'c.txt']) await writeFile(join(s.localRoot, 'listing', n), n);
      assert.deepEqual(await s.dest.list('listing'), ['a.h5', 'b.h5', 'c.txt', 'sub']);
      const st = await s.dest.stat('listing/a.h5');
      assert.equal(st?.size, 4);
      assert.equal(st?.isDirectory, false);
      assert.ok(Math.abs(st!.mtimeMs - Date.now()) < 120_000, `mtime ${st!.mtimeMs} is not recent`);
      assert.equal((await s.dest.stat('listing/sub'))?.isDirectory, true);
      assert.equal(await s.dest.stat('listing/missing'), null);
      await rejectsWith(s.dest.list('no-such-dir'), 'not-found');
    });

    it('removes files and empty directories; removing what is gone is not an error', async () => {
      await mkdir(join(s.localRoot, 'gone', 'empty'), { recursive: true });
      await writeFile(join(s.localRoot, 'gone', 'f'), 'x');
      await s.dest.remove('gone/f');
      await s.dest.remove('gone/empty');
      await s.dest.remove('gone/never-was');
      assert.deepEqual(await s.dest.list('gone'), []);
    });

    it('reports a missing file as not-found, naming it', async () => {
      const e = await rejectsWith(s.dest.openRead('absent/file.h5'), 'not-found');
      assert.match(e.message, /absent\/file\.h5/);
    });

    it('refuses writes after close with file-closed', async () => {
      const f = await s.dest.openWrite('closed.bin', { truncate: true });
      await f.write(0, Buffer.from('x'));
      await f.close();
      await f.close(); // closing twice is harmless
      await rejectsWith(f.write(1, Buffer.from('y')), 'file-closed');
      assert.equal(await readFile(join(s.localRoot, 'closed.bin'), 'utf8'), 'x');
    });
  });
}
