import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { formatKnownHostsLine } from '../../src/transport/known-hosts.js';
import { openDestination } from '../../src/transport/open.js';
import type { SftpDestination } from '../../src/transport/sftp.js';
import type { SftpServerOptions } from '../../src/demo/sftp-server.js';
import { channelsAtConnect } from '../../src/transport/sftp-pool.js';
import { delayedLink, mostBusy, pattern, rejectsWith, rng, sftpFixture, type ServerFixture } from './helpers.js';

/** Wait until the pool has `n` channels (it opens them in the background), however slow the machine. */
async function untilLanes(dest: SftpDestination, n: number): Promise<void> {
  for (let i = 0; i < 200 && dest.pool.lanes.length < n; i++) await new Promise((r) => setTimeout(r, 10));
}

/** A destination on the in-process server with a fixed number of connections and channels. */
async function pooled(fx: ServerFixture, connections: number, channels: number, extra: object = {}): Promise<SftpDestination> {
  return (await openDestination(fx.server.url('alice', '/'), { ...fx.options, connections, channels, ...extra })) as SftpDestination;
}

/** A fresh in-process server and a `pooled` destination on it, both closed when test `t` ends. */
async function pooledServer(t: TestContext, connections: number, channels: number, extra: object = {}, server: Partial<SftpServerOptions> = {}): Promise<{ fx: ServerFixture; dest: SftpDestination }> {
  const fx = await sftpFixture(server);
  let dest: SftpDestination | undefined;
  t.after(async () => { await dest?.close(); await fx.cleanup(); });
  dest = await pooled(fx, connections, channels, extra);
  return { fx, dest };
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
    await untilLanes(dest, 4);
    assert.equal(dest.pool.lanes.length, 4);
    const data = pattern(6 * 1024 * 1024 + 5, 11);
    const f = await dest.openWrite('spread.bin', { truncate: true });
    const at = [0, 1_000_000, 2_500_000, 4_000_000, data.length];
    for (let i = 0; i + 1 < at.length; i++) void f.write(at[i]!, data.subarray(at[i]!, at[i + 1]!));
    const most = await mostBusy(dest, f.flush());
    await f.close();
    assert.ok(most >= 3, `at most ${most} channels carried writes at once`);
    assert.ok((await readFile(join(fx.root, 'spread.bin'))).equals(data));
  });

  it('writes a file closed without awaiting its writes over every channel too', async () => {
    // a channel that carries little per round trip (dropbear's window is 24 KiB) must not be
    // the only one such a file goes over (sidecars and --method files close at once)
    await untilLanes(dest, 4);
    const data = pattern(3 * 1024 * 1024 + 7, 12);
    const f = await dest.openWrite('closed-at-once.bin', { truncate: true });
    void f.write(0, data);
    const most = await mostBusy(dest, f.close());
    assert.ok((await readFile(join(fx.root, 'closed-at-once.bin'))).equals(data));
    assert.ok(most >= 3, `at most ${most} channels carried writes at once`);
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
    const most = await mostBusy(dest, f.flush());
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
  it('a full disk fails the write, and every later write, flush, sync and close with the same error', async (t) => {
    const { dest } = await pooledServer(t, 1, 3, { maxInFlightBytes: 128 * 1024 }, { writeQuotaBytes: 500_000 });
    const f = await dest.openWrite('full.bin', { truncate: true });
    const first = f.write(0, pattern(2_000_000, 1));
    const err = await rejectsWith(first, 'remote-write-failed');
    assert.equal(await f.write(0, Buffer.from('x')).catch((e) => e), err);
    assert.equal(await f.flush().catch((e) => e), err);
    assert.equal(await f.close().catch((e) => e), err);
  });

  it('a cut connection fails writes in flight on any channel, and the destination stays failed', async (t) => {
    const { fx, dest } = await pooledServer(t, 2, 2, { maxInFlightBytes: 128 * 1024 });
    const f = await dest.openWrite('cut.bin', { truncate: true });
    await f.write(0, pattern(1_000_000, 2));
    const pending = f.write(1_000_000, pattern(4_000_000, 3));
    fx.server.dropConnections();
    await rejectsWith(pending, 'connection-lost');
    await rejectsWith(f.flush(), 'connection-lost');
    await rejectsWith(dest.stat('cut.bin'), 'connection-lost');
  });
});

describe('sftp: a long link gets its channels at connect', () => {
  it('asks for as many channels as the handshake\'s bound on the round trip needs, with the first', () => {
    // a LAN's handshake (mostly crypto, 20 ms: at most 4 ms a round trip): one channel
    assert.equal(channelsAtConnect(4, {}), 1);
    // a 277 ms handshake, measured at 1 Gbit/s x 50 ms: ~55 ms a round trip, 6.9 MB in flight, 2 MiB windows
    assert.equal(channelsAtConnect(55.4, {}), 4);
    // never more than one connection carries, nor more than the pool still wants
    assert.equal(channelsAtConnect(1000, {}), 4);
    assert.equal(channelsAtConnect(55.4, {}, 2), 2);
    // an expert's fixed channels per connection are asked for at once, whatever the link
    assert.equal(channelsAtConnect(4, { connections: 2, channels: 3 }), 3);
    assert.equal(channelsAtConnect(1000, { connections: 2 }), 1);
  });

  it('over a 60 ms round trip, the other channels are up before the first request, and the file uses them from its open', async () => {
    const fx = await sftpFixture();
    const link = await delayedLink(fx.server.port, 30);
    await writeFile(fx.knownHosts, `${formatKnownHostsLine('127.0.0.1', link.port, fx.server.hostKey)}\n`);
    const dest = (await openDestination(`sftp://alice@127.0.0.1:${link.port}/`, fx.options)) as SftpDestination;
    try {
      // before: the first channel's limits request came in with one session started
      assert.ok((fx.server.stats.sessionsAtFirstRequest ?? 0) >= 3, `${fx.server.stats.sessionsAtFirstRequest} sessions at the first request`);
      assert.ok(dest.pool.lanes.length >= 3, `${dest.pool.lanes.length} channels once connected`);
      const opens = fx.server.stats.requests.OPEN ?? 0;
      const f = await dest.openWrite('long.bin', { truncate: true, bulk: true });
      // opened on every channel in one round trip, not as its data queues
      assert.equal((fx.server.stats.requests.OPEN ?? 0) - opens, dest.pool.lanes.length);
      const data = pattern(3_000_000, 21);
      await f.write(0, data);
      await f.close();
      assert.ok((await readFile(join(fx.root, 'long.bin'))).equals(data));
    } finally {
      await dest.close();
      await link.close();
      await fx.cleanup();
    }
  });
});

describe('sftp: expert settings', () => {
  it('--connections alone means that many connections, one channel each', async () => {
    const fx = await sftpFixture();
    const dest = (await openDestination(fx.server.url('alice', '/'), { ...fx.options, connections: 2 })) as SftpDestination;
    try {
      await untilLanes(dest, 2);
      // and no more come
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(dest.pool.lanes.length, 2);
      assert.notEqual(dest.pool.lanes[0]!.conn, dest.pool.lanes[1]!.conn);
    } finally {
      await dest.close();
      await fx.cleanup();
    }
  });
});

describe('sftp: a bulk open', () => {
  it('truncates an existing file, though its other handles are opened without truncating', async (t) => {
    const { fx, dest } = await pooledServer(t, 1, 3);
    await untilLanes(dest, 3);
    assert.equal(dest.pool.lanes.length, 3);
    await writeFile(join(fx.root, 'old.bin'), pattern(2_000_000, 1));
    const opens = fx.server.stats.requests.OPEN ?? 0;
    const f = await dest.openWrite('old.bin', { truncate: true, bulk: true });
    assert.equal((fx.server.stats.requests.OPEN ?? 0) - opens, 3);
    const data = pattern(700_000, 2);
    await f.write(0, data);
    await f.close();
    const got = await readFile(join(fx.root, 'old.bin'));
    assert.equal(got.length, data.length);
    assert.ok(got.equals(data));
  });

  it('whose other handles arrive late does not bring back a file renamed meanwhile (its other opens create nothing)', async (t) => {
    const { fx, dest } = await pooledServer(t, 1, 3);
    await untilLanes(dest, 3);
    // the other channels' requests leave 200 ms late, as on a stalled channel
    for (const lane of dest.pool.lanes.slice(1)) {
      const open = lane.sftp.open.bind(lane.sftp) as (...a: unknown[]) => void;
      (lane.sftp as unknown as { open: (...a: unknown[]) => void }).open = (...a: unknown[]) => { setTimeout(() => open(...a), 200); };
    }
    const f = await dest.openWrite('temp.bin', { truncate: true, bulk: true });
    const data = pattern(100_000, 4);
    await f.write(0, data);
    await f.flush();
    await dest.rename('temp.bin', 'named.bin');
    // the late opens reach the server now
    await new Promise((r) => setTimeout(r, 400));
    await f.close();
    assert.ok((await readFile(join(fx.root, 'named.bin'))).equals(data));
    await assert.rejects(readFile(join(fx.root, 'temp.bin')), { code: 'ENOENT' });
  });
});

describe('sftp: the first stat of a file named at connect', () => {
  it('is asked with the folder\'s check and answered from it once; any other call first discards it', async () => {
    const fx = await sftpFixture();
    try {
      const stats = () => fx.server.stats.requests.STAT ?? 0;
      // one channel: the folder's stat waits behind the file's, so only the file's (refused:
      // no such file) is timed alone, and it still gives the round trip
      let dest = (await openDestination(fx.server.url('alice', '/'), { ...fx.options, connections: 1, channels: 1, prefetchStat: 'run.h5' })) as SftpDestination;
      assert.equal(stats(), 2);
      assert.ok(Number.isFinite(dest.pool.rttMs), 'a refused stat still measures the round trip');
      assert.equal(await dest.stat('run.h5'), null);
      assert.equal(stats(), 2);
      assert.equal(await dest.stat('run.h5'), null);
      assert.equal(stats(), 3);
      await dest.close();

      dest = (await openDestination(fx.server.url('alice', '/'), { ...fx.options, prefetchStat: 'run.h5' })) as SftpDestination;
      const f = await dest.openWrite('run.h5', { truncate: true });
      await f.write(0, Buffer.from('12345'));
      await f.close();
      // the file exists now: the answer from connect is gone with the first call
      assert.equal((await dest.stat('run.h5'))?.size, 5);
      await dest.close();
    } finally {
      await fx.cleanup();
    }
  });
});
