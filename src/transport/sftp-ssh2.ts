/**
 * ssh2's client as an SshClient and its SFTP channels as SftpChannels (sftp-channel.ts): the
 * "builtin" transport, SSH in fur's own thread. Everything that reaches into ssh2's internals
 * (its socket, the channel's window, the request table, the limits it fetched) is here.
 */
import type { Socket } from 'node:net';
import type { Client, SFTPWrapper } from 'ssh2';
import type { Done, RemoteAttrs, RequestLimits, SftpChannel, SshClient } from './sftp-channel.js';
import { writeDirect } from './sftp-write.js';

const DEFAULT_WINDOW = 2 * 1024 * 1024;
/** how long a closing connection may wait for its disconnect to leave before it is cut */
const CLOSE_BOUND_MS = 2000;

interface Internals {
  _extensions?: unknown;
  _maxWriteLen?: unknown;
  _maxReadLen?: unknown;
  outgoing?: { window?: unknown };
  _requests?: Record<string, { cb?: (err: Error) => void }>;
}

export class Ssh2Channel implements SftpChannel {
  constructor(readonly raw: SFTPWrapper) {}

  private get internals(): Internals {
    return this.raw as unknown as Internals;
  }

  open(path: string, flags: number, attrs: { mode?: number }, cb: Done<Buffer>): void { this.raw.open(path, flags, attrs, cb); }
  close(handle: Buffer, cb: Done): void { this.raw.close(handle, cb); }
  write(handle: Buffer, buf: Buffer, start: number, len: number, position: number, cb: Done): void {
    if (!writeDirect(this.raw, handle, buf, start, len, position, cb)) this.raw.write(handle, buf, start, len, position, cb);
  }
  read(handle: Buffer, buf: Buffer, start: number, len: number, position: number, cb: Done<number>): void {
    this.raw.read(handle, buf, start, len, position, (err, bytes) => cb(err, bytes));
  }
  fstat(handle: Buffer, cb: Done<RemoteAttrs>): void { this.raw.fstat(handle, cb); }
  fsetstat(handle: Buffer, attrs: { size: number }, cb: Done): void { this.raw.fsetstat(handle, attrs, cb); }
  stat(path: string, cb: Done<RemoteAttrs>): void { this.raw.stat(path, cb); }
  lstat(path: string, cb: Done<RemoteAttrs>): void { this.raw.lstat(path, cb); }
  mkdir(path: string, attrs: { mode: number }, cb: Done): void { this.raw.mkdir(path, attrs, cb); }
  rmdir(path: string, cb: Done): void { this.raw.rmdir(path, cb); }
  unlink(path: string, cb: Done): void { this.raw.unlink(path, cb); }
  rename(from: string, to: string, cb: Done): void { this.raw.rename(from, to, cb); }
  ext_openssh_rename(from: string, to: string, cb: Done): void { this.raw.ext_openssh_rename(from, to, cb); }
  ext_openssh_fsync(handle: Buffer, cb: Done): void { this.raw.ext_openssh_fsync(handle, cb); }
  readdir(path: string, cb: Done<Array<{ filename: string }>>): void { this.raw.readdir(path, cb); }
  realpath(path: string, cb: Done<string>): void { this.raw.realpath(path, cb); }

  /** ssh2 keeps the VERSION packet's extensions, but privately */
  get extensions(): Record<string, string> {
    const ext = this.internals._extensions;
    return ext && typeof ext === 'object' ? (ext as Record<string, string>) : {};
  }

  /** ssh2 fetches limits@openssh.com during the handshake and keeps the answer as its own caps */
  get limits(): RequestLimits | undefined {
    return this.extensions['limits@openssh.com'] === '1' ? this.cap : undefined;
  }

  get cap(): RequestLimits {
    const n = (v: unknown): number => (typeof v === 'number' && v > 0 ? v : 32 * 1024);
    return { maxWrite: n(this.internals._maxWriteLen), maxRead: n(this.internals._maxReadLen) };
  }

  get window(): number {
    const w = this.internals.outgoing?.window;
    return typeof w === 'number' && w > 0 ? w : DEFAULT_WINDOW;
  }

  /**
   * When the socket dies abruptly, ssh2 does not always close the SFTP channel's stream, and the
   * requests still waiting for an answer are never called back: writers waiting on them would
   * hang forever. Answer them with an error, as ssh2 itself does when the channel ends in order.
   */
  abandon(): void {
    const reqs = this.internals._requests;
    if (!reqs) return;
    this.internals._requests = {};
    const err = new Error('No response from server');
    for (const req of Object.values(reqs)) if (typeof req.cb === 'function') req.cb(err);
  }

  end(): void { this.raw.end(); }

  on(event: 'close' | 'error', listener: (err?: Error) => void): this {
    if (event === 'close') this.raw.on('close', () => listener());
    else this.raw.on('error', listener);
    return this;
  }
}

export class Ssh2Client implements SshClient {
  /** the pool keeps to its own share of the server's MaxSessions */
  readonly maxChannels = Infinity;
  private ended = false;

  constructor(readonly raw: Client) {
    // a commit's small requests go out at once, not after the previous segment's ACK (Nagle)
    raw.setNoDelay(true);
    raw.once('close', () => { this.ended = true; });
  }

  private get sock(): Socket | undefined {
    return (this.raw as unknown as { _sock?: Socket })._sock;
  }

  openChannel(): Promise<SftpChannel> {
    return new Promise((resolve, reject) => this.raw.sftp((err, s) => (err ? reject(err) : resolve(new Ssh2Channel(s)))));
  }

  cork(): void { this.sock?.cork?.(); }
  uncork(): void { this.sock?.uncork?.(); }

  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.ended) return resolve();
      // a server (or a middlebox) that never closes its side must not keep fur running after its
      // work is done: seen once, three connections left open for good after a finished run
      const bound = setTimeout(() => { this.raw.destroy(); resolve(); }, CLOSE_BOUND_MS);
      const done = (): void => { clearTimeout(bound); resolve(); };
      this.raw.once('close', done);
      const sock = this.sock;
      this.raw.end();
      // Closed on our side once the disconnect has left: nothing more is sent on it, and what it
      // was owed has been answered or is failed. The server's own close (half a round trip or
      // more later) is not waited for, and the socket no longer keeps the process alive.
      sock?.once('finish', () => { sock.unref(); done(); });
    });
  }

  on(event: 'close' | 'error', listener: (err?: Error) => void): this {
    if (event === 'close') this.raw.on('close', () => listener());
    else this.raw.on('error', listener);
    return this;
  }
}
