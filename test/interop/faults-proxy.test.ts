/**
 * The fault proxy itself, before any fur test leans on it: it relays bytes unchanged both ways,
 * a cut resets the connection right after the n-th byte (and not before), a stall holds
 * everything until it ends, a slow link still delivers every byte in order, a server that is
 * down makes connections fail and one that comes back on another port is reached through the
 * same proxy address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { FaultProxy } from './support/faults/proxy.js';

/** A TCP server that keeps what it receives per connection and can answer with bytes. */
async function sink(): Promise<{ server: Server; port: number; got: Buffer[]; sockets: Socket[]; ended: Promise<void>[] }> {
  const got: Buffer[] = [];
  const sockets: Socket[] = [];
  const ended: Promise<void>[] = [];
  const server = createServer((s) => {
    const i = got.push(Buffer.alloc(0)) - 1;
    sockets.push(s);
    s.on('data', (b: Buffer) => { got[i] = Buffer.concat([got[i]!, b]); });
    s.on('error', () => {});
    ended.push(new Promise((res) => s.on('close', () => res())));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  return { server, port: (server.address() as AddressInfo).port, got, sockets, ended };
}

function client(port: number): Promise<{ sock: Socket; got: () => Buffer; closed: Promise<string> }> {
  return new Promise((res, rej) => {
    const sock = connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    let why = 'end';
    sock.on('data', (b: Buffer) => { got = Buffer.concat([got, b]); });
    sock.on('error', (e: NodeJS.ErrnoException) => { why = e.code ?? e.message; });
    const closed = new Promise<string>((r) => sock.on('close', () => r(why)));
    sock.once('connect', () => res({ sock, got: () => got, closed }));
    sock.once('error', rej);
  });
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const cleanup: Array<() => Promise<void>> = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

async function setup() {
  const s = await sink();
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port: s.port });
  cleanup.push(() => proxy.close(), () => new Promise<void>((r) => { for (const x of s.sockets) x.destroy(); s.server.close(() => r()); }));
  return { s, proxy };
}

describe('fault proxy', () => {
  test('relays bytes both ways unchanged', async () => {
    const { s, proxy } = await setup();
    const c = await client(proxy.port);
    const up = randomBytes(3 << 20);
    const down = randomBytes(2 << 20);
    c.sock.write(up);
    await until(() => s.sockets.length === 1, 'the server side');
    s.sockets[0]!.write(down);
    await until(() => s.got[0]!.length === up.length && c.got().length === down.length, 'both directions');
    assert.ok(s.got[0]!.equals(up));
    assert.ok(c.got().equals(down));
    assert.equal(proxy.stats.up, up.length);
    assert.equal(proxy.stats.down, down.length);
    c.sock.end();
    assert.equal(await c.closed, 'end');
  });

  test('cutAfter(n): the n-th byte arrives, the next does not, and both ends see the connection reset', async () => {
    for (const n of [1, 1000, 65_536, 200_001]) {
      const { s, proxy } = await setup();
      const c = await client(proxy.port);
      proxy.cutAfter(n);
      const data = randomBytes(n + 50_000);
      c.sock.write(data);
      const why = await c.closed;
      await s.ended[0];
      assert.equal(s.got[0]!.length, n, `bytes before the cut at ${n}`);
      assert.ok(s.got[0]!.equals(data.subarray(0, n)), 'the bytes that arrived are the first n');
      assert.equal(why, 'ECONNRESET', 'the client sees a reset');
      assert.equal(proxy.stats.cuts, 1);
      assert.equal(proxy.cutArmed, false, 'one-shot');
    }
  });

  test('a cut counts both directions', async () => {
    const { s, proxy } = await setup();
    const c = await client(proxy.port);
    await until(() => s.sockets.length === 1, 'the server side');
    proxy.cutAfter(300);
    c.sock.write(randomBytes(100));
    await until(() => s.got[0]!.length === 100, 'the first 100 bytes up');
    s.sockets[0]!.write(randomBytes(1000));
    await c.closed;
    assert.equal(c.got().length, 200, '100 up + 200 down = 300');
  });

  test('stall: nothing moves until it ends, then everything arrives in order', async () => {
    const { s, proxy } = await setup();
    const c = await client(proxy.port);
    await until(() => s.sockets.length === 1, 'the server side');
    proxy.stall(60_000);
    const data = randomBytes(100_000);
    c.sock.write(data);
    // the relay has read it all (and holds it): still nothing at the server
    await until(() => proxy.held() === data.length, 'the relay holding the data');
    assert.equal(s.got[0]!.length, 0, 'held while stalled');
    proxy.release();
    await until(() => s.got[0]!.length === data.length, 'delivery after the stall');
    assert.ok(s.got[0]!.equals(data));
    c.sock.end();
  });

  test('slow: a rate-limited link still delivers every byte, in order', async () => {
    const { s, proxy } = await setup();
    const c = await client(proxy.port);
    proxy.slow(256 << 10, 60_000);
    const data = randomBytes(200_000);
    c.sock.write(data);
    await until(() => s.got[0]?.length === data.length, 'slow delivery');
    assert.ok(s.got[0]!.equals(data));
    assert.ok(proxy.throttled() > 0, 'the limit held data back at least once');
    proxy.release();
    c.sock.end();
  });

  test('server down: connections fail; a server on another port behind the same proxy address works', async () => {
    const { s, proxy } = await setup();
    const port = s.port;
    await new Promise<void>((r) => s.server.close(() => r()));
    const c = await client(proxy.port);
    assert.equal(await c.closed, 'end', 'closed as soon as the upstream connect fails');
    assert.equal(proxy.stats.refused, 1);
    const next = await sink();
    cleanup.push(() => new Promise<void>((r) => { for (const x of next.sockets) x.destroy(); next.server.close(() => r()); }));
    assert.notEqual(next.port, port);
    proxy.retarget({ host: '127.0.0.1', port: next.port });
    const d = await client(proxy.port);
    d.sock.write('hello');
    await until(() => next.got[0]?.toString() === 'hello', 'the new server');
    d.sock.end();
  });
});
