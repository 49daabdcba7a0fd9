/**
 * SFTP channels on one or more SSH connections to one server, shared by every file a
 * destination has open. OpenSSH gives each channel a 2 MiB window, so one channel moves at most
 * ~2 MiB per round trip whatever the client does: long, fat links need several channels (and,
 * for TCP's sake on lossy links, several connections) writing at once. Each file writes over
 * whichever channels have room (see SftpFile); this pool owns the channels, counts what is in
 * flight on each, and adds channels while the in-flight allowance (pool.ts) asks for more than
 * the open ones can carry.
 *
 * The first error on any connection or channel poisons the pool: every later request fails
 * with it, as with a single connection, so a run stops and resumes as a whole.
 */
import { FurError, isFurError, remoteFields } from '../errors.js';
import type { Egress } from './egress.js';
import { channelsFor, InFlightControl } from './pool.js';
import type { SftpChannel, SftpSession, SshClient, SshConnect } from './sftp-channel.js';
import { call, Status, type OpContext } from './sftp-errors.js';
import type { SshLikeUrl } from './url.js';

export interface PoolOptions {
  /** SSH connections to use (default: automatic — a new one for every CHANNELS_PER_CONNECTION channels) */
  connections?: number;
  /** SFTP channels on each connection (default: automatic, up to CHANNELS_PER_CONNECTION) */
  channels?: number;
  /** WRITE requests outstanding per channel (default 64) */
  maxRequests?: number;
  /** bytes of WRITE data outstanding per channel (default: twice the server's channel window) */
  maxInFlightBytes?: number;
  /** where WRITE data leaves: counted, and paced by --bwlimit (shared by every pool of a run) */
  egress?: Egress;
}

/** One SFTP channel, with what is outstanding on it. */
export interface Lane extends SftpSession {
  readonly conn: Connection;
  readonly id: number;
  /** the server's channel window: what the channel carries per round trip at most */
  readonly window: number;
  readonly maxBytes: number;
  readonly maxRequests: number;
  /** WRITE data and requests sent and not yet answered */
  bytes: number;
  requests: number;
  /** other requests not yet answered */
  ops: number;
}

export interface Connection {
  readonly client: SshClient;
  readonly lanes: Lane[];
  /** channels being opened on it */
  opening: number;
}

/** What the pool asks of a file that has work waiting for room. */
export interface Dispatcher {
  /** send what fits; true while work is still waiting */
  dispatch(): boolean;
  /** small writes are still waiting */
  urgent(): boolean;
}

/**
 * OpenSSH allows 10 sessions per connection (MaxSessions); staying well below leaves room for
 * the user's own, and spreads the data over several TCP connections on long links.
 */
const CHANNELS_PER_CONNECTION = 4;
const MAX_CONNECTIONS = 4;
/** channels in all at most, when the expert settings do not fix them */
const MAX_CHANNELS = CHANNELS_PER_CONNECTION * MAX_CONNECTIONS;
const DEFAULT_WINDOW = 2 * 1024 * 1024;
/** in flight at least (bytes): below this even a short link idles between acknowledgements */
const FLOOR = 4 * 1024 * 1024;
/** in flight at most (bytes): the memory bound */
const CEILING = 64 * 1024 * 1024;
/** a rate the first channels are opened for, before anything is measured (≈ 1 Gbit/s) */
const ASSUMED_RATE = 125e6;
/** what small writes may add beyond the allowance, bytes */
const SMALL_SLACK = 1024 * 1024;
/** longest wait for an extra channel or connection before going on without it */
const OPEN_TIMEOUT_MS = 30_000;

/**
 * Channels to ask for the moment a connection is authenticated (its first included), before
 * any request has been timed: as many as a link of that round trip (a bound from the handshake)
 * needs at the assumed rate. Asked for alongside the first, they are ready with it: a long link
 * then does not start on one channel's window and open the others round trips later. A LAN's
 * handshake is short, and gets one. `lanes`: how many channels the pool still wants (unbounded
 * at first).
 */
export function channelsAtConnect(rttBoundMs: number, opts: PoolOptions, lanes = Infinity): number {
  const perConnection = channelsPerConnection(opts);
  const want = fixedChannels(opts) ?? channelsFor(ASSUMED_RATE * rttBoundMs / 1000, DEFAULT_WINDOW, perConnection);
  return Math.max(1, Math.min(perConnection, want, lanes));
}

/** An expert's fixed number of channels in all: connections × channels, each 1 unless given. */
function fixedChannels(opts: PoolOptions): number | undefined {
  return opts.connections !== undefined || opts.channels !== undefined ? (opts.connections ?? 1) * (opts.channels ?? 1) : undefined;
}

/** Channels one connection carries at most: one each when only the connections are given. */
function channelsPerConnection(opts: PoolOptions): number {
  return opts.channels ?? (opts.connections !== undefined ? 1 : CHANNELS_PER_CONNECTION);
}

/**
 * Ask for `n` more SFTP channels on an authenticated connection (as many of them as it carries);
 * a failure is the caller's to see.
 */
export function openChannels(client: SshClient, n: number): Promise<SftpChannel>[] {
  const opening: Promise<SftpChannel>[] = [];
  for (let i = 0; i < Math.min(n, client.maxChannels - 1); i++) {
    const p = client.openChannel();
    // if the caller never gets to wait for it (its connection failed first), not an unhandled rejection
    p.catch(() => undefined);
    opening.push(p);
  }
  return opening;
}

export class SftpPool<O extends PoolOptions & { acceptNewHostKey?: boolean } = PoolOptions> {
  readonly lanes: Lane[] = [];
  readonly control: InFlightControl;
  /** WRITE bytes outstanding over all channels */
  inFlight = 0;
  private readonly conns: Connection[] = [];
  private readonly waiting = new Set<Dispatcher>();
  private readonly urgent = new Set<Dispatcher>();
  /** connections being opened, and the channels they will bring */
  private connecting = 0;
  private connectingLanes = 0;
  private pumping = false;
  private again = false;
  private wasLimited = false;
  /** --bwlimit holds WRITEs back until the egress calls again */
  private paced = false;
  private closing = false;
  private failure?: FurError;
  private perConnection: number;
  private maxConnections: number;
  private readonly fixedLanes?: number;
  private readonly maxLanes: number;

  constructor(
    private readonly target: SshLikeUrl<'sftp'>,
    /** how further connections are made (the transport of the first) */
    private readonly connect: SshConnect<O>,
    private readonly opts: O,
    first: SftpSession,
    /** largest WRITE data the server takes (same for every channel of one server) */
    readonly maxWrite: number,
    /** largest READ the server answers in one reply */
    readonly maxRead: number,
    /** the server offers fsync@openssh.com */
    readonly fsync: boolean,
    /** further channels asked for on the first connection while it was set up (openChannels) */
    early: Promise<SftpChannel>[] = [],
  ) {
    this.perConnection = Math.min(channelsPerConnection(opts), first.client.maxChannels);
    this.fixedLanes = fixedChannels(opts);
    this.maxLanes = this.fixedLanes ?? MAX_CHANNELS;
    // a transport with fewer channels per connection than asked for (OpenSSH's ssh: one) carries
    // the same channels on more connections
    this.maxConnections = Math.max(opts.connections ?? MAX_CONNECTIONS, Math.ceil(this.maxLanes / this.perConnection));
    const lane = this.adopt(first, { client: first.client, lanes: [], opening: 0 }, true);
    this.conns.push(lane.conn);
    this.control = new InFlightControl({
      floor: Math.max(FLOOR, 8 * maxWrite),
      ceiling: Math.max(FLOOR, Math.min(CEILING, this.maxLanes * lane.maxBytes)),
    });
    for (const p of early) void this.addChannel(lane.conn, p);
  }

  /** The first error of any channel or connection; every later request fails with it. */
  get broken(): FurError | undefined {
    return this.failure;
  }

  /** The smallest round trip seen, ms. */
  get rttMs(): number {
    return this.control.minRttMs;
  }

  /**
   * Open the channels the round trip suggests right away (in the background), so that a long
   * link does not start with one channel's window. Called once the first round trip is known.
   */
  prewarm(): void {
    const rtt = this.control.minRttMs;
    if (!Number.isFinite(rtt)) return;
    const window = this.lanes[0]!.window;
    const want = this.fixedLanes ?? channelsFor(ASSUMED_RATE * rtt / 1000, window, Math.min(this.maxLanes, 2 * CHANNELS_PER_CONNECTION));
    this.control.allowance = Math.max(this.control.allowance, Math.min(want * window, CEILING));
    this.grow(want);
  }

  /** A channel for a request that is not a WRITE (or for a new file): the least busy one. */
  lane(): Lane {
    let best = this.lanes[0]!;
    let score = Infinity;
    for (const l of this.lanes) {
      const s = l.bytes + l.ops * 65536;
      if (s < score) { best = l; score = s; }
    }
    return best;
  }

  /**
   * Run one request that is not a WRITE on `lane`, counting it; its round trip feeds the
   * estimate when nothing else was waiting ahead of it on that channel — refused ones too (the
   * stat of a file not made yet is often the first request), as long as the server answered.
   */
  async op<T>(lane: Lane, ctx: OpContext, start: Parameters<typeof call<T>>[2]): Promise<T> {
    const alone = lane.bytes === 0 && lane.ops === 0;
    lane.ops++;
    const t0 = performance.now();
    const answered = (): void => { if (alone) this.control.observeRtt(performance.now() - t0); };
    try {
      const v = await call<T>(lane, ctx, start);
      answered();
      return v;
    } catch (e) {
      if (serverAnswered(e)) answered();
      throw e;
    } finally {
      lane.ops--;
    }
  }

  /**
   * May `len` more WRITE bytes go out on `lane` now? Small writes (a commit's metadata) may
   * exceed the allowance a little: they must not wait behind bulk data.
   */
  admit(lane: Lane, len: number, small = false): boolean {
    if (!this.mayLeave()) return false;
    if (small) return lane.requests < lane.maxRequests + 16 && this.inFlight + len <= this.control.allowance + SMALL_SLACK;
    if (lane.requests >= lane.maxRequests) return false;
    if (lane.bytes > 0 && lane.bytes + len > lane.maxBytes) return false;
    return this.inFlight === 0 || this.inFlight + len <= this.control.allowance;
  }

  /** Room for `len` more bytes in the total allowance (whatever the channels say)? */
  allows(len: number): boolean {
    return this.inFlight === 0 || this.inFlight + len <= this.control.allowance;
  }

  /** A channel not in `used` with room for a WRITE of `len`, the emptiest first. */
  spareLane(used: ReadonlySet<Lane>, len: number): Lane | undefined {
    let best: Lane | undefined;
    for (const l of this.lanes) {
      if (used.has(l) || !this.admit(l, len)) continue;
      if (!best || l.bytes < best.bytes) best = l;
    }
    return best;
  }

  /** --bwlimit: may WRITE data leave now? If not, the pool pumps again once it may. */
  private mayLeave(): boolean {
    const egress = this.opts.egress;
    if (!egress) return true;
    if (this.paced) return false;
    if (egress.mayLeave(() => { this.paced = false; this.pump(); })) return true;
    this.paced = true;
    return false;
  }

  sent(lane: Lane, len: number): void {
    this.opts.egress?.left(len);
    lane.bytes += len;
    lane.requests++;
    this.inFlight += len;
  }

  acked(lane: Lane, len: number): void {
    lane.bytes -= len;
    lane.requests--;
    this.inFlight -= len;
    if (this.control.acked(len, performance.now())) this.grow();
    if (this.inFlight === 0 && this.waiting.size === 0) this.control.idle();
    this.pump();
  }

  /** The writes waiting could not all go: the limit (allowance or channels) is binding. */
  limited(): void {
    // held back by --bwlimit, not by the channels: more channels would not help
    if (this.paced) return;
    // noted once per pump: with hundreds of files waiting this is called for each
    this.wasLimited = true;
  }

  /**
   * `d` has work waiting: send what fits now, and again whenever room appears. `urgent` work
   * (small writes: a commit's metadata) is offered room before bulk data.
   */
  wait(d: Dispatcher, urgent = false): void {
    if (urgent) this.urgent.add(d);
    this.waiting.add(d);
    this.pump();
  }

  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    // Requests written in one go leave in one system call (writev) instead of one per packet.
    const corked = this.conns.map((c) => c.client);
    for (const s of corked) s.cork();
    try {
      do {
        this.again = false;
        for (const d of [...this.urgent]) {
          if (!d.dispatch()) this.waiting.delete(d);
          if (!d.urgent()) this.urgent.delete(d);
        }
        for (const d of this.waiting) {
          if (!d.dispatch()) this.waiting.delete(d);
          // once the allowance is used up, nobody else can send either
          if (!this.allows(1)) break;
        }
      } while (this.again);
    } finally {
      for (const s of corked) s.uncork();
      this.pumping = false;
    }
    if (this.wasLimited) {
      this.wasLimited = false;
      this.control.noteLimited();
      this.grow();
    }
  }

  /** Open channels until there are `want` (default: what the allowance needs), in the background. */
  grow(want?: number): void {
    if (this.closing || this.failure) return;
    const opening = this.conns.reduce((n, c) => n + c.opening, 0) + this.connectingLanes;
    const window = this.lanes[0]!.window;
    // one more than the allowance needs: a channel whose window has not reopened yet is no use
    const target = Math.min(this.maxLanes, want ?? this.fixedLanes ?? channelsFor(this.control.allowance, window, this.maxLanes) + 1);
    for (let n = this.lanes.length + opening; n < target; n++) {
      const conn = this.conns.find((c) => c.lanes.length + c.opening < this.perConnection);
      if (conn) {
        void this.addChannel(conn, openChannels(conn.client, 1)[0]!);
      } else if (this.conns.length + this.connecting < this.maxConnections) {
        // the new connection asks for its share of the channels still wanted as soon as it is up
        const share = Math.min(this.perConnection, target - n);
        this.connecting++;
        this.connectingLanes += share;
        n += share - 1;
        void this.openConnection(share);
      } else break;
    }
  }

  /** Make a channel being opened on `conn` a lane once it is open. */
  private async addChannel(conn: Connection, opening: Promise<SftpChannel>): Promise<void> {
    conn.opening++;
    try {
      const sftp = await withTimeout(opening, (s) => s.end());
      const first = this.lanes[0]!;
      const lane = this.adopt({ client: conn.client, sftp, serverSoftware: first.serverSoftware, display: first.display }, conn, false);
      if (this.closing || this.failure) lane.sftp.end();
    } catch {
      // the server allows fewer sessions per connection (MaxSessions): live with the ones we have
      this.perConnection = Math.max(1, conn.lanes.length);
    } finally {
      conn.opening--;
      this.pump();
    }
  }

  /** Connect once more, for `share` channels: the first, and the rest asked for alongside it. */
  private async openConnection(share: number): Promise<void> {
    let session: SftpSession;
    let early: Promise<SftpChannel>[] = [];
    try {
      session = await withTimeout(this.connect(this.target, { ...this.opts, acceptNewHostKey: false },
        (client) => { early = openChannels(client, share - 1); }), (s) => void s.client.close());
    } catch {
      // a server limiting connections (MaxStartups, per-user limits): go on with those we have
      this.connecting--;
      this.connectingLanes -= share;
      this.maxConnections = Math.max(1, this.conns.length);
      return;
    }
    this.connecting--;
    this.connectingLanes -= share;
    if (this.closing || this.failure) {
      void session.client.close();
      return;
    }
    const conn: Connection = { client: session.client, lanes: [], opening: 0 };
    this.conns.push(conn);
    this.adopt(session, conn, true);
    for (const p of early) void this.addChannel(conn, p);
    // the new connection may carry more channels
    this.grow();
    this.pump();
  }

  /** Make a session one of the pool's lanes, and make its failure everyone's. */
  private adopt(s: SftpSession, conn: Connection, newConnection: boolean): Lane {
    const window = s.sftp.window;
    // One window per channel, less the requests' headers: more would only wait inside ssh2 for
    // the window to reopen (another channel could carry it now), and a request that finds the
    // window open goes out without ssh2's extra copy (sftp-write.ts). The server's window
    // adjustment for a request's bytes comes before the request's reply, so the window has
    // room again by the time a reply frees room here.
    const maxBytes = this.opts.maxInFlightBytes ?? Math.max(this.maxWrite, window - 128 * 64);
    const lane = Object.assign(s, {
      conn, id: this.lanes.length, window, maxBytes, maxRequests: this.opts.maxRequests ?? 64, bytes: 0, requests: 0, ops: 0,
    }) as Lane;
    this.lanes.push(lane);
    conn.lanes.push(lane);
    const lost = (cause?: Error): void => this.poison(lane, cause);
    if (newConnection) {
      s.client.on('error', lost);
      s.client.on('close', () => lost());
    }
    s.sftp.on('error', lost);
    s.sftp.on('close', () => lost());
    return lane;
  }

  private poison(where: Lane, cause?: Error): void {
    if (this.failure) return;
    this.failure = where.broken ?? new FurError('connection-lost',
      `connection to ${where.display} was lost${cause ? ` (${cause.message})` : ''}; check the network and the server, then run again to resume`,
      { url: where.display }, { cause });
    for (const l of this.lanes) {
      l.broken ??= this.failure;
      l.sftp.abandon();
    }
  }

  /** End every connection; `reason` becomes the error of any later request. */
  async close(reason: FurError): Promise<void> {
    this.closing = true;
    this.failure ??= reason;
    for (const l of this.lanes) l.broken ??= reason;
    await Promise.all(this.conns.map((c) => c.client.close()));
    this.failure = reason;
    for (const l of this.lanes) l.broken = reason;
  }
}

/** a refusal the server sent (a status), not a channel that went away */
function serverAnswered(e: unknown): boolean {
  const status = isFurError(e) ? remoteFields(e).status : undefined;
  return typeof status === 'number' && status !== Status.NO_CONNECTION && status !== Status.CONNECTION_LOST;
}

/**
 * `p`, or a rejection once OPEN_TIMEOUT_MS pass. What `p` brings after that is handed to `late`
 * to close: on a long link saturated by the first connection, new connections' SFTP sessions
 * were measured arriving after 30 s, and left open they kept fur running after its work was done.
 */
function withTimeout<T>(p: Promise<T>, late: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => { expired = true; reject(new Error('timed out')); }, OPEN_TIMEOUT_MS);
    timer.unref();
    p.then((v) => {
      clearTimeout(timer);
      if (expired) late(v);
      else resolve(v);
    }, (e) => { clearTimeout(timer); reject(e); });
  });
}
