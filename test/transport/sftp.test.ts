import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { putSidecar } from '../../src/index/sidecar.js';
import { openDestination } from '../../src/transport/open.js';
import { SftpDestination } from '../../src/transport/sftp.js';
import { destinationContract } from './contract.js';
import { pattern, rejectsWith, sftpFixture, shuffledPieces, type ServerFixture } from './helpers.js';

destinationContract('sftp (server with posix-rename and fsync)', async () => {
  const fx = await sftpFixture();
  const dest = await openDestination(fx.server.url('alice', '/'), fx.options);
  return { dest, localRoot: fx.root, cleanup: fx.cleanup };
});

destinationContract('sftp (plain SFTP v3 server)', async () => {
  const fx = await sftpFixture({ extensions: false });
  const dest = await openDestination(fx.server.url('alice', '/'), fx.options);
  return { dest, localRoot: fx.root, cleanup: fx.cleanup };
});

describe('sftp destination', () => {
  let fx: ServerFixture;
  let dest: SftpDestination;
  before(async () => {
    fx = await sftpFixture();
    dest = (await openDestination(fx.server.url('alice', '/'), fx.options)) as SftpDestination;
  });
  after(async () => { await dest.close(); await fx.cleanup(); });

  it('reports what the server offers: extensions and the 32 KiB request cap of ssh2 servers', () => {
    assert.equal(dest.capabilities.fsync, true);
    assert.equal(dest.capabilities.atomicReplace, true);
    assert.equal(dest.capabilities.positionalWrite, true);
    assert.match(dest.serverSoftware, /^ssh2js/);
    const max = dest.capabilities.maxWriteSize!;
    assert.ok(max > 30_000 && max <= 32 * 1024, `maxWriteSize ${max}`);
  });

  it('pipelines: many WRITE requests wait at the server at once', async () => {
    const before = { ...fx.server.stats };
    const data = pattern(3 * 1024 * 1024, 3);
    const f = await dest.openWrite('pipelined.bin', { truncate: true });
    for (const p of shuffledPieces(data, 20_000, 5)) void f.write(p.offset, p.bytes);
    await f.flush();
    await f.close();
    const writes = fx.server.stats.writeRequests - before.writeRequests;
    assert.ok(writes >= 3 * 1024 * 1024 / 20_000, `${writes} WRITE requests`);
    // A client waiting for each reply would never have more than one request pending.
    assert.ok(fx.server.stats.maxPending >= 16, `at most ${fx.server.stats.maxPending} requests were pending`);
    assert.ok((await readFile(join(fx.root, 'pipelined.bin'))).equals(data));
  });

  it('splits one large write into requests of the server maximum', async () => {
    const before = fx.server.stats.writeRequests;
    const data = pattern(5 * 1024 * 1024 + 17, 9);
    const f = await dest.openWrite('large.bin', { truncate: true });
    await f.write(0, data);
    await f.close();
    const requests = fx.server.stats.writeRequests - before;
    assert.equal(requests, Math.ceil(data.length / dest.capabilities.maxWriteSize!));
    assert.ok((await readFile(join(fx.root, 'large.bin'))).equals(data));
  });

  it('sync sends fsync@openssh.com after the writes before it', async () => {
    const before = fx.server.stats.fsyncs;
    const f = await dest.openWrite('synced.bin', { truncate: true });
    void f.write(0, Buffer.from('hello '));
    void f.write(6, Buffer.from('world'));
    await f.sync!();
    assert.equal(fx.server.stats.fsyncs, before + 1);
    assert.equal(await readFile(join(fx.root, 'synced.bin'), 'utf8'), 'hello world');
    await f.close();
  });

  it('truncateAndClose sends the cut, its fsync and the close together (one round trip), in that order', async () => {
    const data = pattern(100_000, 4);
    const f = await dest.openWrite('cut.bin', { truncate: true });
    await f.write(0, data);
    await f.flush();
    const fsyncs = fx.server.stats.fsyncs;
    fx.server.stats.maxPending = 0;
    await f.truncateAndClose!(1000, true);
    // one after another, each waiting for its reply, they would never wait at the server together
    assert.equal(fx.server.stats.maxPending, 3, `requests pending at once`);
    assert.equal(fx.server.stats.fsyncs, fsyncs + 1);
    assert.ok((await readFile(join(fx.root, 'cut.bin'))).equals(data.subarray(0, 1000)));
    await rejectsWith(f.write(0, data.subarray(0, 10)), 'file-closed');
  });

  it('a sidecar is written and closed in one round trip, then renamed into place', async () => {
    const refs = { version: 1 as const, refs: { '.zgroup': '{"zarr_format":2}' } };
    fx.server.stats.maxPending = 0;
    const n = await putSidecar(dest, 'side.h5', refs);
    // the WRITE and the CLOSE waited at the server together
    assert.equal(fx.server.stats.maxPending, 2, 'requests pending at once');
    assert.equal(n, JSON.stringify(refs).length);
    assert.deepEqual(JSON.parse(await readFile(join(fx.root, 'side.h5.kerchunk.json'), 'utf8')), refs);
    assert.deepEqual((await readdir(fx.root)).filter((f) => f.includes('side.h5')), ['side.h5.kerchunk.json']);
  });

  it('resolves paths under the URL path, and creates a missing root only when asked', async () => {
    await rejectsWith(openDestination(fx.server.url('alice', '/runs/2024'), fx.options), 'not-found');
    const d = await openDestination(fx.server.url('alice', '/runs/2024'), { ...fx.options, createRoot: true });
    try {
      const f = await d.openWrite('scan.h5', { truncate: true });
      await f.write(0, Buffer.from('frames'));
      await f.close();
      assert.equal(await readFile(join(fx.root, 'runs', '2024', 'scan.h5'), 'utf8'), 'frames');
    } finally {
      await d.close();
    }
  });

  it('refuses a path that climbs out of the served root, naming it', async () => {
    const e = await rejectsWith(dest.stat('../../etc/passwd'), 'permission-denied');
    assert.match(e.message, /\/\.\.\/\.\.\/etc\/passwd/);
    await rejectsWith(dest.openWrite('/../outside.bin'), 'permission-denied');
  });

  it('fails calls after close with destination-closed', async () => {
    const d = await openDestination(fx.server.url('alice', '/'), fx.options);
    await d.close();
    await rejectsWith(d.list('.'), 'destination-closed');
  });
});

describe('sftp failures', () => {
  it('a full disk fails the write as remote-write-failed naming the file; the file stays failed', async () => {
    const fx = await sftpFixture({ writeQuotaBytes: 100_000 });
    const d = await openDestination(fx.server.url('alice', '/'), fx.options);
    try {
      const f = await d.openWrite('full.bin', { truncate: true });
      const writes = [0, 1, 2, 3, 4].map((i) => f.write(i * 30_000, pattern(30_000, i)));
      const e = await rejectsWith(f.flush(), 'remote-write-failed');
      assert.match(e.message, /\/full\.bin/);
      assert.match(e.message, /full or over quota/);
      assert.equal(e.fields.path, '/full.bin');
      const settled = await Promise.allSettled(writes);
      assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
      // Every later call on the file reports the same, first error.
      await assert.rejects(f.write(200_000, Buffer.from('x')), (x) => x === e);
      await assert.rejects(f.close(), (x) => x === e);
    } finally {
      await d.close();
      await fx.cleanup();
    }
  });

  it('a read-only server refuses writes as permission-denied naming the path', async () => {
    const fx = await sftpFixture({ readOnly: true });
    const d = await openDestination(fx.server.url('alice', '/'), fx.options);
    try {
      const e = await rejectsWith(d.openWrite('data/frame.h5'), 'permission-denied');
      assert.match(e.message, /\/data\/frame\.h5/);
      assert.equal(e.fields.url, d.url);
    } finally {
      await d.close();
      await fx.cleanup();
    }
  });

  it('a cut connection fails in-flight and later calls with the same first error', async () => {
    const fx = await sftpFixture();
    const d = await openDestination(fx.server.url('alice', '/'), fx.options);
    try {
      const f = await d.openWrite('cut.bin', { truncate: true });
      await f.write(0, pattern(100_000, 1));
      const inFlight = f.write(100_000, pattern(2_000_000, 2));
      fx.server.dropConnections();
      const e = await rejectsWith(inFlight, 'connection-lost');
      assert.match(e.message, /sftp:\/\/alice@127\.0\.0\.1:\d+\//);
      await assert.rejects(f.flush(), (x) => x === e);
      await assert.rejects(d.list('.'), (x) => x === e);
      await assert.rejects(d.openWrite('other.bin'), (x) => x === e);
    } finally {
      await d.close();
      await fx.cleanup();
    }
  });
});
