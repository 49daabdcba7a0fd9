import { FurError, isFurError } from '../errors.js';
import type { RemoteFile } from './destination.js';
import { WriteTracker } from './inflight.js';
import { sftpError, statusOf } from './sftp-errors.js';
import type { RemoteAttrs } from './sftp-channel.js';
import type { Dispatcher, Lane, SftpPool } from './sftp-pool.js';

/** Reads of one call issued at once; enough to cover a round trip at typical link speeds. */
const READ_AHEAD = 32;
// SFTP open flags (draft-ietf-secsh-filexfer-02 §6.3).
const READ = 0x01, WRITE = 0x02;

/** An open handle of the file on one channel. */
interface Leg {
  lane: Lane;
  handle: Buffer;
  /** WRITEs sent on this handle since its last fsync */
  dirty: boolean;
}

/** One WRITE request: a view of the caller's bytes, never a copy. */
interface Piece {
  kind: 'piece';
  seq: number;
  offset: number;
  end: number;
  buf: Buffer;
  start: number;
  len: number;
  leg?: Leg;
  done: (e?: unknown) => void;
}

/** A request on every handle that must follow everything queued before it (fsync, close). */
interface Fence {
  kind: 'fsync' | 'close';
  seq: number;
  done: (e?: unknown) => void;
}

/**
 * Writes this small go ahead of queued bulk data (unless they overlap it): they are a commit's
 * metadata — index nodes, object headers, the superblock — and a commit should not wait behind
 * the next batch's data.
 */
const SMALL = 64 * 1024;

/**
 * An open SFTP file whose writes go over as many of the pool's channels as have room: each
 * write is cut into requests the server accepts, all sent without waiting for replies, each on
 * the channel (a handle of the file opened on it) with the most room. One channel does requests
 * in order, several do not: a write overlapping one still in flight on another channel waits
 * for it, so overlapping writes land in the order they were made, as on one channel.
 *
 * `flush` is a barrier over every channel; `sync` and `close` are sent on every handle right
 * behind the writes made before them (a channel's requests are done in order, and fsync covers
 * the file, not the handle), so write + sync + close costs one round trip, not three. The first
 * failure poisons the file.
 */
export class SftpFile implements RemoteFile, Dispatcher {
  private readonly writes = new WriteTracker();
  private readonly legs: Leg[] = [];
  private readonly queue: Array<Piece | Fence> = [];
  /** small writes, sent before `queue` */
  private readonly small: Piece[] = [];
  private seq = 0;
  /** pieces sent and not yet answered */
  private readonly sending = new Set<Piece>();
  private queuedBytes = 0;
  /** writes not yet answered, by range: a read waits only for those it overlaps */
  private readonly unsettled = new Set<{ offset: number; end: number; settled: Promise<void> }>();
  /** channels this file is being opened on (several at once: each open is a round trip) */
  private readonly legsOpening = new Set<Lane>();
  private closed = false;
  /** producers waiting for the queue to shrink (see backlog) */
  private readonly backlogWaiters: { limit: number; resolve: () => void }[] = [];

  constructor(
    /** the file's absolute path now (a rename through the destination moves it) */
    public path: string,
    private readonly pool: SftpPool,
    first: { lane: Lane; handle: Buffer },
    /** may open handles on other channels (files open for writing) */
    private spread: boolean,
    private readonly fsync: boolean,
    /** called once the file is closed (the destination stops following its renames) */
    private readonly onClosed: () => void = () => {},
  ) {
    this.legs.push({ ...first, dirty: false });
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    const refused = this.refusal();
    if (refused) return refused;
    if (data.length === 0) return this.writes.track(Promise.resolve());
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const max = this.pool.maxWrite;
    const p = new Promise<void>((resolve, reject) => {
      let left = Math.ceil(buf.length / max);
      let failed = false;
      const done = (e?: unknown): void => {
        if (failed) return;
        if (e !== undefined) {
          failed = true;
          return reject(e);
        }
        if (--left === 0) resolve();
      };
      for (let start = 0; start < buf.length; start += max) {
        const len = Math.min(max, buf.length - start);
        const piece: Piece = { kind: 'piece', seq: this.seq++, offset: offset + start, end: offset + start + len, buf, start, len, done };
        if (buf.length <= SMALL && !this.queue.some((q) => q.kind === 'piece' && overlaps(q, piece))) this.small.push(piece);
        else this.queue.push(piece);
      }
    });
    this.queuedBytes += buf.length;
    const tracked = this.writes.track(p);
    const range = { offset, end: offset + buf.length, settled: tracked.then(() => undefined, () => undefined) };
    this.unsettled.add(range);
    void range.settled.then(() => this.unsettled.delete(range));
    this.pool.wait(this, this.small.length > 0);
    return tracked;
  }

  backlog(limit: number): Promise<void> {
    if (this.queuedBytes <= limit || this.closed || this.pool.broken !== undefined || this.writes.error !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.backlogWaiters.push({ limit, resolve }));
  }

  /** Called by the pool whenever room may have appeared. */
  dispatch(): boolean {
    const more = this.dispatchQueued();
    if (this.backlogWaiters.length) {
      // a failed file wakes everyone: the failure is reported by the writes themselves
      const all = this.queuedBytes === 0;
      for (let i = this.backlogWaiters.length - 1; i >= 0; i--) {
        const w = this.backlogWaiters[i]!;
        if (all || this.queuedBytes <= w.limit) { this.backlogWaiters.splice(i, 1); w.resolve(); }
      }
    }
    return more;
  }

  private dispatchQueued(): boolean {
    const stop = this.pool.broken ?? this.writes.error;
    if (stop !== undefined) {
      // The file is lost already; requests on a dead channel would never be answered.
      for (const item of [...this.small.splice(0), ...this.queue.splice(0)]) item.done(stop);
      this.queuedBytes = 0;
      return false;
    }
    while (this.small.length > 0) {
      const piece = this.small[0]!;
      const leg = this.legFor(piece, true);
      if (leg === undefined) break;
      this.small.shift();
      this.queuedBytes -= piece.len;
      this.send(piece, leg);
    }
    while (this.queue.length > 0) {
      const item = this.queue[0]!;
      if (item.kind !== 'piece') {
        // a fence follows every write made before it, small ones included
        if (this.small.length > 0 && this.small[0]!.seq < item.seq) return true;
        this.queue.shift();
        this.sendFence(item);
        continue;
      }
      // a small write made earlier and overlapping goes first
      if (this.small.some((p) => p.seq < item.seq && overlaps(p, item))) return true;
      const leg = this.legFor(item, false);
      if (leg === undefined) return true;
      this.queue.shift();
      this.queuedBytes -= item.len;
      this.send(item, leg);
    }
    return this.small.length > 0;
  }

  urgent(): boolean {
    return this.small.length > 0;
  }

  /** The handle a piece goes on now, or undefined to wait. */
  private legFor(piece: Piece, small: boolean): Leg | undefined {
    let only: Leg | undefined;
    for (const s of this.sending) {
      if (overlaps(s, piece)) {
        // overlaps a write still in flight: only that write's channel keeps the order
        if (only !== undefined && only !== s.leg) return undefined;
        only = s.leg;
      }
    }
    if (only) return this.pool.admit(only.lane, piece.len, small) ? only : undefined;
    let best: Leg | undefined;
    for (const l of this.legs) {
      if (!this.pool.admit(l.lane, piece.len, small)) continue;
      if (!best || l.lane.bytes < best.lane.bytes) best = l;
    }
    if (!best) {
      this.pool.limited();
      this.openLeg();
    }
    return best;
  }

  /**
   * When this file has more waiting than its channels take, open it on a channel with room too —
   * also once it is closing, while writes made before the close still wait: a file closed without
   * awaiting its writes (a sidecar, a small file of --method files) would otherwise go over one
   * channel, and a channel with a small window (dropbear: 24 KiB) carries little per round trip.
   */
  private openLeg(): void {
    if (!this.spread || (this.closed && this.queuedBytes === 0)) return;
    const max = this.pool.maxWrite;
    if (this.queuedBytes < 2 * max || !this.pool.allows(max)) return;
    const lane = this.pool.spareLane(new Set([...this.legs.map((l) => l.lane), ...this.legsOpening]), max);
    if (!lane) return;
    this.addLeg(lane, this.pool.op<Buffer>(lane, { op: 'open for writing', path: this.path }, (cb) => lane.sftp.open(this.path, READ | WRITE, {}, cb)));
  }

  /** A handle of this file being opened on `lane`: written over once open. */
  addLeg(lane: Lane, opening: Promise<Buffer>): void {
    this.legsOpening.add(lane);
    opening
      .then((handle) => {
        if (this.closed && this.queue.length === 0) {
          lane.sftp.close(handle, () => {});
          return;
        }
        this.legs.push({ lane, handle, dirty: false });
      }, (e: unknown) => {
        // another handle was refused (a server limit): keep writing over the ones we have; a
        // file renamed while its handle was being opened is opened under its new name next time
        if (!isFurError(e, 'not-found')) this.spread = false;
      })
      .finally(() => {
        this.legsOpening.delete(lane);
        this.pool.pump();
      });
  }

  private send(piece: Piece, leg: Leg): void {
    const lane = leg.lane;
    piece.leg = leg;
    leg.dirty = true;
    this.sending.add(piece);
    this.pool.sent(lane, piece.len);
    let answered = false;
    const answer = (err?: unknown): void => {
      if (answered) return;
      answered = true;
      this.sending.delete(piece);
      if (err) this.failLater(lane, err, 'write', piece.done);
      else piece.done();
      this.pool.acked(lane, piece.len);
    };
    try {
      lane.sftp.write(leg.handle, piece.buf, piece.start, piece.len, piece.offset, (err) => answer(err ?? undefined));
    } catch (e) {
      answer(e);
    }
  }

  private sendFence(fence: Fence): void {
    const legs = fence.kind === 'fsync' ? this.legs.filter((l) => l.dirty) : this.legs;
    if (legs.length === 0) return fence.done();
    let left = legs.length;
    let first: unknown;
    const answered = (e?: unknown): void => {
      if (e !== undefined && first === undefined) first = e;
      if (--left === 0) fence.done(first);
    };
    for (const leg of legs) {
      const lane = leg.lane;
      if (fence.kind === 'fsync') leg.dirty = false;
      lane.ops++;
      const cb = (err: Error | null | undefined): void => {
        lane.ops--;
        if (err) this.failLater(lane, err, fence.kind, answered);
        else answered();
      };
      try {
        if (fence.kind === 'fsync') lane.sftp.ext_openssh_fsync(leg.handle, cb);
        else lane.sftp.close(leg.handle, cb);
      } catch (e) {
        cb(e as Error);
      }
    }
  }

  /** Queue a fence behind every write made so far and wait for it and for those writes. */
  private async fence(kind: Fence['kind']): Promise<void> {
    // the writes made before the fence, not those made while it waits
    const before = this.writes.barrier();
    before.catch(() => {});
    let fenceError: unknown;
    const done = new Promise<void>((resolve) => {
      this.queue.push({ kind, seq: this.seq++, done: (e) => { fenceError = e; resolve(); } });
    });
    this.pool.wait(this, this.small.length > 0);
    await done;
    await before;
    if (fenceError !== undefined) throw fenceError;
  }

  private failLater(lane: Lane, err: unknown, op: string, fail: (e: unknown) => void): void {
    const ctx = { op, path: this.path };
    // Without a status the channel died; give the connection's events a turn to record why.
    if (statusOf(err) === undefined) setImmediate(() => fail(sftpError(lane, err, ctx)));
    else fail(sftpError(lane, err, ctx));
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.ensureOpen();
    // Writes to these bytes may still wait for room; a read must see them (others need not land first).
    const wanted = { offset, end: offset + length };
    await Promise.all([...this.unsettled].filter((w) => overlaps(w, wanted)).map((w) => w.settled));
    if (this.writes.error !== undefined) throw this.writes.error;
    const { lane, handle } = this.legs[0]!;
    const out = Buffer.allocUnsafe(length);
    const maxRead = this.pool.maxRead;
    let eof = length;
    const pieces: Array<[number, number]> = [];
    for (let start = 0; start < length; start += maxRead) pieces.push([start, Math.min(maxRead, length - start)]);
    const readPiece = async (start: number, len: number): Promise<void> => {
      let got = 0;
      // Servers may answer with less than asked; ask again for the rest until end of file.
      while (got < len) {
        const n = await this.pool.op<number>(lane, { op: 'read', path: this.path }, (cb) =>
          lane.sftp.read(handle, out, start + got, len - got, offset + start + got, (err, bytes) => cb(err, bytes)));
        if (!n) {
          eof = Math.min(eof, start + got);
          return;
        }
        got += n;
      }
    };
    let nextPiece = 0;
    const worker = async (): Promise<void> => {
      while (nextPiece < pieces.length) {
        const [start, len] = pieces[nextPiece++]!;
        await readPiece(start, len);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_AHEAD, pieces.length) }, worker));
    return new Uint8Array(out.buffer, out.byteOffset, eof);
  }

  async size(): Promise<number> {
    this.ensureOpen();
    await this.writes.barrier();
    const { lane, handle } = this.legs[0]!;
    const st = await this.pool.op<RemoteAttrs>(lane, { op: 'stat', path: this.path }, (cb) => lane.sftp.fstat(handle, cb));
    return st.size;
  }

  async flush(): Promise<void> {
    await this.writes.barrier();
  }

  /** Cut the file to `size` bytes (SETSTAT with a size, which OpenSSH applies with ftruncate). */
  async truncate(size: number): Promise<void> {
    this.ensureOpen();
    await this.writes.barrier();
    await this.cut(size);
  }

  /** SETSTAT with the size on the first handle (OpenSSH applies it with ftruncate). */
  private cut(size: number): Promise<void> {
    const { lane, handle } = this.legs[0]!;
    return this.pool.op(lane, { op: 'truncate', path: this.path }, (cb) => lane.sftp.fsetstat(handle, { size }, cb));
  }

  /**
   * SETSTAT with the size, fsync@openssh.com when `durable` (and offered), and CLOSE, sent one
   * behind the other: the server takes a channel's requests in order, so the handle closes only
   * after the cut (and its fsync), and the three cost one round trip instead of three.
   */
  async truncateAndClose(size: number, durable: boolean): Promise<void> {
    this.ensureOpen();
    const steps: Promise<unknown>[] = [];
    try {
      await this.writes.barrier();
      steps.push(this.cut(size));
      const { lane, handle } = this.legs[0]!;
      if (durable && this.fsync) steps.push(this.pool.op(lane, { op: 'fsync', path: this.path }, (cb) => lane.sftp.ext_openssh_fsync(handle, cb)));
      for (const s of steps) s.catch(() => {}); // reported below, once the handles are closed
    } finally {
      // closed whatever happened: a failed barrier must not leave the handles open
      await this.close();
    }
    for (const s of steps) await s;
  }

  /** Durable where the server offers fsync@openssh.com; otherwise the same as `flush`. */
  async sync(): Promise<void> {
    this.ensureOpen();
    if (!this.fsync) return this.flush();
    await this.fence('fsync');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
    for (const w of this.backlogWaiters.splice(0)) w.resolve();
    if (this.pool.broken) {
      // The handles cannot be closed; whether the server kept the last bytes is unknown.
      await Promise.allSettled([this.writes.barrier()]);
      this.writes.fail(this.pool.broken);
    } else {
      await this.fence('close').catch((e) => this.writes.fail(e));
      if (this.pool.broken) this.writes.fail(this.pool.broken);
    }
    if (this.writes.error !== undefined) throw this.writes.error;
  }

  private refusal(): Promise<void> | undefined {
    const e = this.writes.error ?? this.pool.broken ?? (this.closed ? closedError(this.path) : undefined);
    if (e === undefined) return undefined;
    const p = Promise.reject(e);
    p.catch(() => {});
    return p;
  }

  private ensureOpen(): void {
    if (this.closed) throw closedError(this.path);
  }
}

function overlaps(a: { offset: number; end: number }, b: { offset: number; end: number }): boolean {
  return a.offset < b.end && b.offset < a.end;
}

function closedError(path: string): FurError<'file-closed'> {
  return new FurError('file-closed', `${path} was used after it was closed (a bug in the caller)`, { path });
}
