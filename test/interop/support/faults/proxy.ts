/**
 * A userspace TCP relay on loopback that sits between fur and the SSH server and misbehaves on
 * request, the way real links do:
 *
 *  - `cutAfter(n)`: the connection carrying the n-th byte from now (either direction) is reset
 *    right after that byte, as a dropped link or a crashed middlebox would;
 *  - `stall(ms)`: nothing moves in either direction for a while (connections stay open);
 *  - `slow(bytesPerSecond, ms)`: every connection is rate-limited for a while.
 *
 * Buffering is bounded: a relay that is told to hold data stops reading its source (TCP
 * backpressure reaches the sender), so a stall or a slow link looks to both ends like a slow
 * network, not like an infinitely fast one that lost bytes.
 *
 * The relay keeps its port across server restarts: when the server is down, new connections
 * are accepted and then closed as soon as the upstream connect fails, so the client sees its
 * handshake fail the way it would against a stopped host.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface ProxyStats {
  connections: number;
  /** bytes forwarded client → server */
  up: number;
  /** bytes forwarded server → client */
  down: number;
  /** connections reset by a `cutAfter` budget running out */
  cuts: number;
  /** upstream connects that failed (server down) */
  refused: number;
}

const HIGH_WATER = 256 << 10;

/** One direction of one connection. */
class Relay {
  private queue: Buffer[] = [];
  queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  closed = false;

  constructor(private from: Socket, private to: Socket, private proxy: FaultProxy, private conn: Connection, private dir: 'up' | 'down') {
    from.on('data', (b: Buffer) => {
      this.queue.push(b);
      this.queued += b.length;
      if (this.queued > HIGH_WATER) from.pause();
      this.pump();
    });
  }

  /** Move queued bytes on as far as the current faults allow. */
  pump(): void {
    if (this.closed || this.waitingDrain) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    while (this.queue.length) {
      const now = Date.now();
      const held = this.proxy.heldUntil();
      if (held > now) return this.later(held - now);
      let chunk = this.queue[0]!;
      const allowance = this.proxy.takeRate(chunk.length, now);
      if (allowance === 0) return this.later(this.proxy.rateWaitMs());
      if (allowance < chunk.length) chunk = chunk.subarray(0, allowance);
      const budget = this.proxy.cutBudget();
      if (budget !== undefined && chunk.length >= budget) {
        // this connection carries the last byte before the cut
        const last = chunk.subarray(0, budget);
        this.proxy.cutFired();
        this.proxy.count(this.dir, last.length);
        this.to.write(last, () => this.conn.reset());
        // if the write never completes (peer gone), reset anyway soon
        setTimeout(() => this.conn.reset(), 50).unref();
        this.conn.cutting = true;
        this.closed = true;
        return;
      }
      this.proxy.spend(chunk.length);
      this.consume(chunk.length);
      this.proxy.count(this.dir, chunk.length);
      if (!this.to.write(chunk)) {
        this.waitingDrain = true;
        this.to.once('drain', () => { this.waitingDrain = false; this.pump(); });
        return;
      }
    }
    this.from.resume();
  }

  private consume(n: number): void {
    const head = this.queue[0]!;
    if (n === head.length) this.queue.shift();
    else this.queue[0] = head.subarray(n);
    this.queued -= n;
    if (this.queued <= HIGH_WATER / 2) this.from.resume();
  }

  private later(ms: number): void {
    this.timer = setTimeout(() => { this.timer = undefined; this.pump(); }, Math.max(1, Math.ceil(ms)));
  }

  /** the source ended: pass the end on once everything queued is out */
  flushThenEnd(): void {
    const finish = () => {
      if (this.closed) return;
      if (this.queue.length || this.waitingDrain) { setTimeout(finish, 5).unref(); return; }
      this.to.end();
    };
    finish();
  }

  stop(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.queue = [];
    this.queued = 0;
  }
}

class Connection {
  up?: Relay;
  down?: Relay;
  cutting = false;
  private done = false;

  constructor(readonly client: Socket, readonly server: Socket, private onGone: () => void) {}

  /** abrupt end of both sides (RST), as a broken link looks to each end */
  reset(): void {
    if (this.done) return;
    this.done = true;
    this.up?.stop();
    this.down?.stop();
    for (const s of [this.client, this.server]) {
      if (s.destroyed) continue;
      // A reset with a write still queued in libuv (the peer stopped reading) leaves that write
      // request pending for ever, and node then spins at exit waiting for it (seen once: the soak
      // passed, its process never ended). Such a socket is closed instead: the peer sees the
      // connection end just the same, by FIN rather than RST.
      const queued = (s as unknown as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize ?? 0;
      if (queued > 0 || s.writableLength > 0) s.destroy();
      else s.resetAndDestroy();
    }
    this.onGone();
  }

  /** orderly end (one side closed) */
  gone(): void {
    if (this.done) return;
    this.done = true;
    this.up?.stop();
    this.down?.stop();
    this.client.destroy();
    this.server.destroy();
    this.onGone();
  }
}

export class FaultProxy {
  readonly stats: ProxyStats = { connections: 0, up: 0, down: 0, cuts: 0, refused: 0 };
  private readonly live = new Set<Connection>();
  private holdUntil = 0;
  private budget: number | undefined;
  private rate: { bytesPerSec: number; until: number; tokens: number; at: number } | undefined;
  private throttles = 0;

  private constructor(private server: Server, readonly port: number, private upstream: { host: string; port: number }) {}

  /** where new connections go */
  get target(): { host: string; port: number } {
    return this.upstream;
  }

  /** Send new connections elsewhere (another server on the same address, as clients see it); open ones stay. */
  retarget(target: { host: string; port: number }): void {
    this.upstream = target;
  }

  /** Starts a relay on 127.0.0.1 (a free port) in front of `target`. */
  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    let proxy!: FaultProxy;
    const server = createServer({ noDelay: true }, (client) => proxy.accept(client));
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(0, '127.0.0.1', () => res());
    });
    const addr = server.address();
    proxy = new FaultProxy(server, typeof addr === 'object' && addr ? addr.port : 0, target);
    return proxy;
  }

  /** connections open right now */
  get connections(): number {
    return this.live.size;
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    client.on('error', () => {});
    client.pause();
    const upstream = connect({ host: this.upstream.host, port: this.upstream.port, noDelay: true });
    upstream.on('error', () => {});
    upstream.pause();
    const conn = new Connection(client, upstream, () => this.live.delete(conn));
    this.live.add(conn);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      conn.up = new Relay(client, upstream, this, conn, 'up');
      conn.down = new Relay(upstream, client, this, conn, 'down');
      client.on('end', () => conn.up?.flushThenEnd());
      upstream.on('end', () => conn.down?.flushThenEnd());
      client.resume();
      upstream.resume();
    });
    upstream.once('close', () => {
      if (!connected) this.stats.refused++;
      if (!conn.cutting) conn.gone();
    });
    client.once('close', () => { if (!conn.cutting) conn.gone(); });
  }

  /** Reset the connection that carries the `bytes`-th byte from now (either direction). One-shot. */
  cutAfter(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes < 1) throw new RangeError(`cutAfter: ${bytes} is not a whole number ≥ 1`);
    this.budget = bytes;
  }

  /** whether a `cutAfter` is still waiting for its byte */
  get cutArmed(): boolean {
    return this.budget !== undefined;
  }

  /** Forget an armed cut that has not fired. */
  disarm(): void {
    this.budget = undefined;
  }

  /** Reset every open connection now. */
  cutNow(): number {
    const n = this.live.size;
    for (const c of [...this.live]) c.reset();
    return n;
  }

  /** Hold all traffic for `ms` (from now; extends a running stall). */
  stall(ms: number): void {
    this.holdUntil = Math.max(this.holdUntil, Date.now() + ms);
    this.schedule(ms);
  }

  /** End a stall or a slow link now. */
  release(): void {
    this.holdUntil = 0;
    this.rate = undefined;
    this.schedule(0);
  }

  /** bytes the relays hold right now (read from one side, not yet passed to the other) */
  held(): number {
    let n = 0;
    for (const c of this.live) n += (c.up?.queued ?? 0) + (c.down?.queued ?? 0);
    return n;
  }

  /** how often a slow link held data back */
  throttled(): number {
    return this.throttles;
  }

  /** Limit every connection together to `bytesPerSecond` for `ms`. */
  slow(bytesPerSecond: number, ms: number): void {
    const now = Date.now();
    this.rate = { bytesPerSec: bytesPerSecond, until: now + ms, tokens: Math.min(bytesPerSecond / 20, 4096), at: now };
    this.schedule(ms);
  }

  /** after a fault window ends, wake relays that were waiting on it */
  private schedule(ms: number): void {
    setTimeout(() => { for (const c of this.live) { c.up?.pump(); c.down?.pump(); } }, ms + 1).unref();
  }

  // ---- used by relays ----

  heldUntil(): number {
    return this.holdUntil;
  }

  /** bytes of `want` that may go now under the rate limit */
  takeRate(want: number, now: number): number {
    const r = this.rate;
    if (!r) return want;
    if (now >= r.until) { this.rate = undefined; return want; }
    r.tokens = Math.min(r.bytesPerSec, r.tokens + ((now - r.at) * r.bytesPerSec) / 1000);
    r.at = now;
    const n = Math.min(want, Math.floor(r.tokens));
    r.tokens -= n;
    if (n < want) this.throttles++;
    return n;
  }

  rateWaitMs(): number {
    const r = this.rate;
    if (!r) return 1;
    return Math.max(1, Math.min(r.until - Date.now(), (1000 * Math.max(1, 1 - r.tokens)) / r.bytesPerSec, 50));
  }

  cutBudget(): number | undefined {
    return this.budget;
  }

  spend(n: number): void {
    if (this.budget !== undefined) this.budget -= n;
  }

  cutFired(): void {
    this.budget = undefined;
    this.stats.cuts++;
  }

  count(dir: 'up' | 'down', n: number): void {
    this.stats[dir] += n;
  }

  async close(): Promise<void> {
    this.cutNow();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}
