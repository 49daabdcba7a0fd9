/**
 * What fur's SFTP machinery (the pool, its files, the destination) asks of an SSH transport, so
 * that one implementation of pipelining, several channels, bulk opens and commit barriers serves
 * both: ssh2 in fur's own thread (sftp-ssh2.ts) and the system's OpenSSH `ssh`, spoken to by
 * fur's own SFTP client over its pipes (sftp-openssh.ts, sftp-client.ts).
 *
 * The request methods have the shape of ssh2's SFTPWrapper (callbacks; a failure the server
 * reports carries its SFTP status as `code`, one without a `code` means the channel went away).
 */
import { FurError } from '../errors.js';
import type { SshLikeUrl } from './url.js';

export type Done<T = void> = (err: Error | null | undefined, value?: T) => void;

/** The attributes fur reads (draft-ietf-secsh-filexfer-02 §5): mtime in seconds. */
export interface RemoteAttrs {
  size: number;
  mode: number;
  mtime: number;
}

/** One SFTP channel (a session channel running the sftp subsystem). */
export interface SftpChannel {
  open(path: string, flags: number, attrs: { mode?: number }, cb: Done<Buffer>): void;
  close(handle: Buffer, cb: Done): void;
  /** a WRITE of `buf[start, start + len)` at `position`; the bytes are not copied before they are sent */
  write(handle: Buffer, buf: Buffer, start: number, len: number, position: number, cb: Done): void;
  /** a READ into `buf` at `start`; the value is the number of bytes read (0 at end of file) */
  read(handle: Buffer, buf: Buffer, start: number, len: number, position: number, cb: Done<number>): void;
  fstat(handle: Buffer, cb: Done<RemoteAttrs>): void;
  fsetstat(handle: Buffer, attrs: { size: number }, cb: Done): void;
  stat(path: string, cb: Done<RemoteAttrs>): void;
  lstat(path: string, cb: Done<RemoteAttrs>): void;
  mkdir(path: string, attrs: { mode: number }, cb: Done): void;
  rmdir(path: string, cb: Done): void;
  unlink(path: string, cb: Done): void;
  rename(from: string, to: string, cb: Done): void;
  /** posix-rename@openssh.com */
  ext_openssh_rename(from: string, to: string, cb: Done): void;
  /** fsync@openssh.com */
  ext_openssh_fsync(handle: Buffer, cb: Done): void;
  /** every entry of a directory (OPENDIR, READDIR until EOF, CLOSE) */
  readdir(path: string, cb: Done<Array<{ filename: string }>>): void;
  realpath(path: string, cb: Done<string>): void;

  /** the extensions the server announced in its VERSION packet */
  readonly extensions: Readonly<Record<string, string>>;
  /** the server's own request limits (limits@openssh.com), when it announced them */
  readonly limits?: RequestLimits;
  /** the largest request this client sends in one piece (more it would split, one after another) */
  readonly cap: RequestLimits;
  /** bytes the channel carries per round trip at most (the server's SSH channel window) */
  readonly window: number;
  /** Answer every request still waiting with an error (the channel died without saying so). */
  abandon(): void;
  end(): void;
  /** 'error' (with the error) or 'close': the channel or connection is gone */
  on(event: 'close' | 'error', listener: (err?: Error) => void): unknown;
}

/** Largest WRITE and READ data of one request, bytes. */
export interface RequestLimits {
  maxWrite: number;
  maxRead: number;
}

/** One SSH connection, carrying one or more SFTP channels. */
export interface SshClient {
  /** SFTP channels one connection carries at most (OpenSSH's `ssh` without multiplexing: 1) */
  readonly maxChannels: number;
  /** Ask for one more SFTP channel on this connection. */
  openChannel(): Promise<SftpChannel>;
  /** Hold what is sent until `uncork`, so requests made together leave in one system call. */
  cork(): void;
  uncork(): void;
  /**
   * End the connection once what was sent has left. Resolves when nothing more will be sent on
   * it (what it was owed has been answered, or failed), within a bound: a peer that never
   * closes its side must not keep fur running.
   */
  close(): Promise<void>;
  /** 'error' (with the error) or 'close': the channel or connection is gone */
  on(event: 'close' | 'error', listener: (err?: Error) => void): unknown;
}

/** A connected SFTP channel, and the first error that ended it. */
export interface SftpSession {
  readonly client: SshClient;
  readonly sftp: SftpChannel;
  /** the server's software identification, e.g. `OpenSSH_9.2p1 Debian-2` ('' when not known) */
  readonly serverSoftware: string;
  readonly display: string;
  /** the first error that broke the connection; every later call fails with it */
  broken?: FurError;
}

/**
 * Connect, authenticate and open one SFTP channel. `onAuthenticated` is called as soon as the
 * connection can take more channels (ssh2: authenticated, its first channel just asked for),
 * with a bound on the link's round trip from how long that took: a caller wanting more channels
 * can ask for them alongside the first instead of round trips later.
 */
export type SshConnect<O> = (
  target: SshLikeUrl<'sftp'>, opts: O, onAuthenticated?: (client: SshClient, rttBoundMs: number) => void,
) => Promise<SftpSession>;

/** Keep the first error that ends a connection, so every later call reports the original cause. */
export function watchSession(s: SftpSession): void {
  const lost = (cause?: Error): void => {
    s.broken ??= new FurError('connection-lost',
      `connection to ${s.display} was lost${cause ? ` (${cause.message})` : ''}; check the network and the server, then run again to resume`,
      { url: s.display }, { cause });
    s.sftp.abandon();
  };
  s.client.on('error', (e) => lost(e));
  s.client.on('close', () => lost());
  s.sftp.on('error', (e) => lost(e));
  s.sftp.on('close', () => lost());
}
