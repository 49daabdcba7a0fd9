import type { Stats } from 'ssh2';
import { FurError } from '../errors.js';
import type { RemoteFile } from './destination.js';
import { WriteTracker } from './inflight.js';
import type { SftpSession } from './sftp-connect.js';
import { call, sftpError, statusOf } from './sftp-errors.js';
import type { RequestWindow } from './sftp-window.js';

/** What a file needs to know about the channel it lives on. */
export interface ChannelLimits {
  /** largest WRITE data the server takes in one request */
  maxWrite: number;
  /** largest READ the server answers in one reply */
  maxRead: number;
  /** shared by every file on the channel */
  window: RequestWindow;
  /** fsync@openssh.com is offered */
  fsync: boolean;
}

/** Reads of one call issued at once; enough to cover a round trip at typical link speeds. */
const READ_AHEAD = 32;

/**
 * An open SFTP file handle with pipelined writes: each write is cut into requests the server
 * accepts and all of them are sent without waiting for replies (up to the channel's window).
 * That is what lifts SFTP from one request per round trip to the link's speed.
 */
export class SftpFile implements RemoteFile {
  private readonly writes = new WriteTracker();
  private closed = false;

  constructor(
    readonly path: string,
    private readonly session: SftpSession,
    private readonly handle: Buffer,
    private readonly limits: ChannelLimits,
  ) {}

  write(offset: number, data: Uint8Array): Promise<void> {
    const refused = this.refusal();
    if (refused) return refused;
    if (data.length === 0) return this.writes.track(Promise.resolve());
    return this.writes.track(this.send(offset, Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  }

  private send(offset: number, buf: Buffer): Promise<void> {
    const { maxWrite, window } = this.limits;
    const sftp = this.session.sftp;
    return new Promise<void>((resolve, reject) => {
      let left = Math.ceil(buf.length / maxWrite);
      let failed = false;
      const fail = (e: unknown): void => {
        if (failed) return;
        failed = true;
        reject(e);
      };
      for (let start = 0; start < buf.length; start += maxWrite) {
        const len = Math.min(maxWrite, buf.length - start);
        window.submit(len, (release) => {
          // Requests still queued when something failed are not sent: the file is already lost
          // at that point, and sending on a dead channel would never be answered.
          const stop = this.session.broken ?? this.writes.error ?? (failed ? new Error('stopped') : undefined);
          if (stop !== undefined) {
            release();
            return fail(stop);
          }
          try {
            sftp.write(this.handle, buf, start, len, offset + start, (err) => {
              release();
              if (err) return this.failLater(err, { op: 'write', path: this.path }, fail);
              if (--left === 0) resolve();
            });
          } catch (e) {
            release();
            this.failLater(e, { op: 'write', path: this.path }, fail);
          }
        });
      }
    });
  }

  private failLater(err: unknown, ctx: { op: string; path: string }, fail: (e: unknown) => void): void {
    if (statusOf(err) === undefined) setImmediate(() => fail(sftpError(this.session, err, ctx)));
    else fail(sftpError(this.session, err, ctx));
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.ensureOpen();
    // Writes may still sit in the window's queue; a read must see them.
    await this.writes.barrier();
    const out = Buffer.allocUnsafe(length);
    const { maxRead } = this.limits;
    let eof = length;
    const pieces: Array<[number, number]> = [];
    for (let start = 0; start < length; start += maxRead) pieces.push([start, Math.min(maxRead, length - start)]);
    const readPiece = async (start: number, len: number): Promise<void> => {
      let got = 0;
      // Servers may answer with less than asked; ask again for the rest until end of file.
      while (got < len) {
        const n = await call<number>(this.session, { op: 'read', path: this.path }, (cb) =>
          this.session.sftp.read(this.handle, out, start + got, len - got, offset + start + got, (err, bytes) => cb(err, bytes)));
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
        const [start, len] = pieces[nextPiece++];
        await readPiece(start, len);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_AHEAD, pieces.length) }, worker));
    return new Uint8Array(out.buffer, out.byteOffset, eof);
  }

  async size(): Promise<number> {
    this.ensureOpen();
    await this.writes.barrier();
    const st = await call<Stats>(this.session, { op: 'stat', path: this.path }, (cb) => this.session.sftp.fstat(this.handle, cb));
    return st.size;
  }

  async flush(): Promise<void> {
    await this.writes.barrier();
  }

  /** Cut the file to `size` bytes (SETSTAT with a size, which OpenSSH applies with ftruncate). */
  async truncate(size: number): Promise<void> {
    this.ensureOpen();
    await this.writes.barrier();
    await call(this.session, { op: 'truncate', path: this.path }, (cb) => this.session.sftp.fsetstat(this.handle, { size }, cb));
  }

  /** Durable where the server offers fsync@openssh.com; otherwise the same as `flush`. */
  async sync(): Promise<void> {
    this.ensureOpen();
    await this.writes.barrier();
    if (!this.limits.fsync) return;
    await call(this.session, { op: 'fsync', path: this.path }, (cb) => this.session.sftp.ext_openssh_fsync(this.handle, cb));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.writes.barrier()]);
    if (this.session.broken) {
      // The handle was never closed; whether the server kept the last bytes is unknown.
      this.writes.fail(this.session.broken);
    } else {
      await call(this.session, { op: 'close', path: this.path }, (cb) => this.session.sftp.close(this.handle, cb))
        .catch((e) => this.writes.fail(e));
    }
    if (this.writes.error !== undefined) throw this.writes.error;
  }

  private refusal(): Promise<void> | undefined {
    const e = this.writes.error ?? this.session.broken ?? (this.closed ? closedError(this.path) : undefined);
    if (e === undefined) return undefined;
    const p = Promise.reject(e);
    p.catch(() => {});
    return p;
  }

  private ensureOpen(): void {
    if (this.closed) throw closedError(this.path);
  }
}

function closedError(path: string): FurError<'file-closed'> {
  return new FurError('file-closed', `${path} was used after it was closed (a bug in the caller)`, { path });
}
