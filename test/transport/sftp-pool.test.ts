import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDestination } from '../../src/transport/open.js';
import type { SftpDestination } from '../../src/transport/sftp.js';
import { pattern, rejectsWith, rng, sftpFixture, type ServerFixture } from './helpers.js';

/** A destination on the in-process server with a fixed number of connections and channels. */
async function pooled(fx: ServerFixture, connections: number, channels: number, extra: object = {}): Promise<SftpDestination> {
  return (await openDestination(fx.server.url('alice', '/'), { ...fx.options, connections, channels, ...extra })) as SftpDestination;
}

describe('sftp: one file over several channels and connections', () => {
  let fx: ServerFixture;
  let dest: SftpDestination;
  before(async () => {
    fx = await sftpFixture();
    // two connections of two channels; a small in-flight bound per channel so writes spread
    dest = await pooled(fx, 2, 2, { maxInFlightBytes: 256 * 1024 });
  });
  after(async () => { await dest.close(); await fx.cleanup(); });

  it('writes a large file over every channel, and it arrives whole', async () => {
    // the pool opens the channels asked for in the background, right after connecting
    for (let i = 0; i < 200 && dest.pool.lanes.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(dest.pool.lanes.length, 4);
    const data = pattern(6 * 1024 * 1024 + 5, 11);
    const f = await dest.openWrite('spread.bin', { truncate: true });
    const at = [0, 1_000_000, 2_500_000, 4_000_000, data.length];
    let most = 0;
    for (let i = 0; i + 1 < at.length; i++) void f.write(at[i]!, data.subarray(at[i]!, at[i + 1]!));
    // while the writes are out, count the channels carrying some (until every write is answered,
    // however slow a loaded machine makes that)
    let answered = false;
    const flushed = f.flush().finally(() => { answered = true; });
    while (!answered) {
      most = Math.max(most, dest.pool.lanes.filter((l) => l.bytes > 0).length);
      await new Promise((r) => setImmediate(r));
    }
    await flushed;
    await f.close();
    assert.ok(most >= 3, `at most ${most} channels carried writes at once`);
    assert.ok((await readFile(join(fx.root, 'spread.bin'))).equals(data));
  });

  it('keeps overlapping writes in the order they were made, whatever channel each takes', async () => {
    const next = rng(7);
    const size = 2 * 1024 * 1024;
    const expected = Buffer.alloc(size);
    const f = await dest.openWrite('overlap.bin', { truncate: true });
    for (let i = 0; i < 400; i++) {
      const len = 1 + next(300_000);
      const off = next(size - len);
      const bytes = pattern(len, 100 + i);
      bytes.copy(expected, off);
      void f.write(off, bytes);
    }
    await f.flush();
    await f.close();
    const got = await readFile(join(fx.root, 'overlap.bin'));
    assert.ok(got.equals(expected.subarray(0, got.length)), 'later writes win where they overlap');
  });

  it('sends write, sync and close back to back: fsync after the writes, close after the fsync', async () => {
    const before = { ...fx.server.stats };
    const data = pattern(300_000, 5);
    const f = await dest.openWrite('pipelined-fences.bin', { truncate: true });
    const w = f.write(0, data);
    const s = f.sync!();
    const c = f.close();
    await Promise.all([w, s, c]);
    assert.ok(fx.server.stats.fsyncs > before.fsyncs);
    assert.ok((await readFile(join(fx.root, 'pipelined-fences.bin'))).equals(data));
  });

  it('a file renamed while open takes more channels under its new name', async () => {
    const f = await dest.openWrite('before-rename.bin', { truncate: true });
    await f.write(0, Buffer.from('head'));
    await dest.rename('before-rename.bin', 'after-rename.bin');
    assert.equal(f.path, join('/', 'after-rename.bin'));
    const data = pattern(3_000_000, 9);
    void f.write(4, data);
    let most = 0;
    let answered = false;
    const flushed = f.flush().finally(() => { answered = true; });
    while (!answered) {
      most = Math.max(most, dest.pool.lanes.filter((l) => l.bytes > 0).length);
      await new Promise((r) => setImmediate(r));
    }
    await flushed;
    await f.close();
    assert.ok(most >= 2, `at most ${most} channels carried writes at once`);
    const got = await readFile(join(fx.root, 'after-rename.bin'));
    assert.equal(got.subarray(0, 4).toString(), 'head');
    assert.ok(got.subarray(4).equals(data));
  });

  it('reads see earlier writes to the same bytes, without waiting for unrelated ones', async () => {
    const f = await dest.openWrite('read-after-write.bin', { truncate: true });
    void f.write(0, Buffer.from('first'));
    void f.write(1_000_000, pattern(2_000_000, 3));
    assert.equal(Buffer.from(await f.read(0, 5)).toString(), 'first');
    await f.close();
  });
});

describe('sftp pool: the first failure is everyone\'s', () => {
  it('a full disk fails the write, and every later write, flush, sync and close with the same error', async () => {
    const fx = await sftpFixture({ writeQuotaBytes: 500_000 });
    const dest = await pooled(fx, 1, 3, { maxInFlightBytes: 128 * 1024 });
    try {
      const f = await dest.openWrite('full.bin', { truncate: true });
      const first = f.write(0, pattern(2_000_000, 1));
      const err = await rejectsWith(first, 'remote-write-failed');
      assert.equal(await f.write(0, Buffer.from('x')).catch((e) => e), err);
      assert.equal(await f.flush().catch((e) => e), err);
      assert.equal(await f.close().catch((e) => e), err);
    } finally {
      await dest.close();
      await fx.cleanup();
    }
  });

  it('a cut connection fails writes in flight on any channel, and the destination stays failed', async () => {
    const fx = await sftpFixture();
    const dest = await pooled(fx, 2, 2, { maxInFlightBytes: 128 * 1024 });
    try {
      const f = await dest.openWrite('cut.bin', { truncate: true });
      await f.write(0, pattern(1_000_000, 2));
      const pending = f.write(1_000_000, pattern(4_000_000, 3));
      fx.server.dropConnections();
      await rejectsWith(pending, 'connection-lost');
      await rejectsWith(f.flush(), 'connection-lost');
      await rejectsWith(dest.stat('cut.bin'), 'connection-lost');
    } finally {
      await dest.close();
      await fx.cleanup();
    }
  });
});
