import { posix } from 'node:path';
import type { FileEntry, SFTPWrapper, Stats } from 'ssh2';
import { FurError } from '../errors.js';
import type { Capabilities, Destination, RemoteFile, RemoteStat } from './destination.js';
import { connectSftp, type SftpConnectOptions, type SftpSession } from './sftp-connect.js';
import { call } from './sftp-errors.js';
import { SftpFile, type ChannelLimits } from './sftp-file.js';
import { RequestWindow } from './sftp-window.js';
import type { SshLikeUrl } from './url.js';

export interface SftpOptions extends SftpConnectOptions {
  /** WRITE requests outstanding per channel (default 64) */
  maxRequests?: number;
  /** bytes of WRITE data outstanding per channel (default 8 MiB) */
  maxInFlightBytes?: number;
  /** create the destination directory if it is missing (otherwise that is an error) */
  createRoot?: boolean;
}

// SFTP open flags (draft-ietf-secsh-filexfer-02 §6.3).
const READ = 0x01, WRITE = 0x02, CREAT = 0x08, TRUNC = 0x10;
const S_IFMT = 0o170000, S_IFDIR = 0o040000;

/** A directory on an SFTP server, over one SSH connection and one SFTP channel. */
export class SftpDestination implements Destination {
  readonly url: string;
  readonly capabilities: Capabilities;
  private readonly limits: ChannelLimits;
  private readonly atomicRename: boolean;

  private constructor(
    private readonly session: SftpSession,
    /** absolute remote path of the destination directory */
    readonly root: string,
    limits: ChannelLimits,
    extensions: Record<string, string>,
  ) {
    this.url = session.display;
    this.limits = limits;
    this.atomicRename = extensions['posix-rename@openssh.com'] === '1';
    this.capabilities = {
      positionalWrite: true,
      // Renaming onto a name that does not exist yet is atomic in plain SFTP v3.
      rename: true,
      atomicReplace: this.atomicRename,
      fsync: limits.fsync,
      maxWriteSize: limits.maxWrite,
    };
  }

  static async connect(target: SshLikeUrl<'sftp'>, opts: SftpOptions = {}): Promise<SftpDestination> {
    const session = await connectSftp(target, opts);
    try {
      const extensions = serverExtensions(session.sftp);
      const sizes = requestSizes(session.sftp, session.serverSoftware, extensions);
      const limits: ChannelLimits = {
        ...sizes,
        window: new RequestWindow(opts.maxRequests ?? 64, opts.maxInFlightBytes ?? 8 * 1024 * 1024),
        fsync: extensions['fsync@openssh.com'] === '1',
      };
      const home = posix.isAbsolute(target.path)
        ? '/'
        : await call<string>(session, { op: 'resolve', path: '.' }, (cb) => session.sftp.realpath('.', cb));
      const root = append(home, target.path);
      const dest = new SftpDestination(session, root, limits, extensions);
      await dest.checkRoot(opts.createRoot ?? false);
      return dest;
    } catch (e) {
      session.client.end();
      throw e;
    }
  }

  /** The server's software identification, e.g. `OpenSSH_9.2p1` (used to pick request sizes). */
  get serverSoftware(): string {
    return this.session.serverSoftware;
  }

  private async checkRoot(create: boolean): Promise<void> {
    const st = await this.stat(this.root);
    if (st === null) {
      if (create) return this.mkdirp(this.root);
      throw new FurError('not-found',
        `remote directory ${this.root} does not exist on ${this.url}; create it or allow creating it (createRoot)`,
        { url: this.url, path: this.root });
    }
    if (!st.isDirectory) {
      throw new FurError('not-a-directory', `${this.root} on ${this.url} is not a directory`, { url: this.url, path: this.root });
    }
  }

  /** Relative paths are under the destination directory; absolute ones are server paths. */
  resolve(path: string): string {
    return append(this.root, path);
  }

  async openWrite(path: string, opts: { truncate?: boolean } = {}): Promise<RemoteFile> {
    const abs = this.resolve(path);
    // READ too: a RemoteFile reads back what it wrote (reopen and append).
    const flags = READ | WRITE | CREAT | (opts.truncate ? TRUNC : 0);
    const handle = await call<Buffer>(this.session, { op: 'open for writing', path: abs }, (cb) =>
      this.session.sftp.open(abs, flags, { mode: 0o644 }, cb));
    return new SftpFile(abs, this.session, handle, this.limits);
  }

  async openRead(path: string): Promise<RemoteFile> {
    const abs = this.resolve(path);
    const handle = await call<Buffer>(this.session, { op: 'open for reading', path: abs }, (cb) =>
      this.session.sftp.open(abs, READ, cb));
    return new SftpFile(abs, this.session, handle, this.limits);
  }

  async stat(path: string): Promise<RemoteStat | null> {
    const abs = this.resolve(path);
    try {
      const st = await call<Stats>(this.session, { op: 'stat', path: abs }, (cb) => this.session.sftp.stat(abs, cb));
      return { size: st.size, mtimeMs: st.mtime * 1000, isDirectory: (st.mode & S_IFMT) === S_IFDIR };
    } catch (e) {
      if ((e as FurError).tag === 'not-found') return null;
      throw e;
    }
  }

  async mkdirp(path: string): Promise<void> {
    const abs = this.resolve(path);
    // Find the deepest level that exists, then create the missing ones top-down.
    const missing: string[] = [];
    for (let dir = abs; ; dir = posix.dirname(dir)) {
      const st = await this.stat(dir);
      if (st !== null) {
        if (!st.isDirectory) {
          throw new FurError('not-a-directory', `cannot create ${abs} on ${this.url}: ${dir} is a file`, { url: this.url, path: dir });
        }
        break;
      }
      missing.unshift(dir);
      if (posix.dirname(dir) === dir) break;
    }
    for (const dir of missing) {
      try {
        await call(this.session, { op: 'create directory', path: dir }, (cb) => this.session.sftp.mkdir(dir, { mode: 0o755 }, cb));
      } catch (e) {
        // Someone else (another fur, another channel) may have created it meanwhile.
        if ((await this.stat(dir))?.isDirectory !== true) throw e;
      }
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const src = this.resolve(from);
    const dst = this.resolve(to);
    const ctx = { op: `rename to ${dst}`, path: src };
    if (this.atomicRename) {
      await call(this.session, ctx, (cb) => this.session.sftp.ext_openssh_rename(src, dst, cb));
      return;
    }
    try {
      await call(this.session, ctx, (cb) => this.session.sftp.rename(src, dst, cb));
    } catch (e) {
      // Plain SFTP v3 rename refuses to replace; without posix-rename the old file must go first.
      if ((e as FurError).tag !== 'remote-failed' || (await this.stat(dst)) === null) throw e;
      await this.remove(dst);
      await call(this.session, ctx, (cb) => this.session.sftp.rename(src, dst, cb));
    }
  }

  /** Removes a file or an empty directory; a path that is already gone is not an error. */
  async remove(path: string): Promise<void> {
    const abs = this.resolve(path);
    let st: Stats;
    try {
      // lstat: a symbolic link is removed itself, never what it points to.
      st = await call<Stats>(this.session, { op: 'stat', path: abs }, (cb) => this.session.sftp.lstat(abs, cb));
    } catch (e) {
      if ((e as FurError).tag === 'not-found') return;
      throw e;
    }
    const isDir = (st.mode & S_IFMT) === S_IFDIR;
    try {
      await call(this.session, { op: 'remove', path: abs }, (cb) =>
        isDir ? this.session.sftp.rmdir(abs, cb) : this.session.sftp.unlink(abs, cb));
    } catch (e) {
      if ((e as FurError).tag !== 'not-found') throw e;
    }
  }

  async list(dir: string): Promise<string[]> {
    const abs = this.resolve(dir);
    const entries = await call<FileEntry[]>(this.session, { op: 'list', path: abs }, (cb) => this.session.sftp.readdir(abs, cb));
    return entries.map((e) => e.filename).filter((n) => n !== '.' && n !== '..').sort();
  }

  async close(): Promise<void> {
    if (this.session.broken?.tag === 'destination-closed') return;
    const closing = new FurError('destination-closed', `${this.url} was used after it was closed (a bug in the caller)`, { url: this.url });
    // Set before ending, so the 'close' event does not record a lost connection instead.
    this.session.broken ??= closing;
    await new Promise<void>((resolve) => {
      this.session.client.once('close', () => resolve());
      this.session.client.end();
      setTimeout(resolve, 2000).unref();
    });
    this.session.broken = closing;
  }
}

/**
 * Join remote paths without resolving `..`: the server resolves them (it knows its symbolic links
 * and its chroot), as OpenSSH's sftp client leaves them to it.
 */
function append(base: string, path: string): string {
  const tidy = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p).replace(/\/{2,}/g, '/');
  if (path.startsWith('/')) return tidy(path);
  if (path === '' || path === '.') return tidy(base);
  return tidy(base.endsWith('/') ? `${base}${path}` : `${base}/${path}`);
}

/** Extensions the server announced in its VERSION packet (ssh2 keeps them, but privately). */
function serverExtensions(sftp: SFTPWrapper): Record<string, string> {
  const ext = (sftp as unknown as { _extensions?: unknown })._extensions;
  return ext && typeof ext === 'object' ? (ext as Record<string, string>) : {};
}

/**
 * Request sizes for this server. OpenSSH ≥ 8.6 announces its real limits (limits@openssh.com,
 * 255 KiB writes), which ssh2 fetches during the handshake. Without them, OpenSSH ≥ 8.6 still
 * takes 255 KiB and anyone else is only trusted with 32 KiB, the size every SFTP server must
 * accept. Never more than ssh2 itself will put in one request: it would split the request
 * into pieces sent one after the other, undoing the pipelining.
 */
export function requestSizes(sftp: SFTPWrapper, software: string, extensions: Record<string, string>): { maxWrite: number; maxRead: number } {
  const internal = sftp as unknown as { _maxWriteLen?: unknown; _maxReadLen?: unknown };
  const m = /^OpenSSH_(\d+)\.(\d+)/.exec(software);
  const modernOpenSsh = m !== null && (Number(m[1]) > 8 || (Number(m[1]) === 8 && Number(m[2]) >= 6));
  const guess = modernOpenSsh ? 255 * 1024 : 32 * 1024;
  const cap = (v: unknown): number => (typeof v === 'number' && v > 0 ? v : guess);
  if (extensions['limits@openssh.com'] === '1') {
    return { maxWrite: cap(internal._maxWriteLen), maxRead: cap(internal._maxReadLen) };
  }
  return { maxWrite: Math.min(guess, cap(internal._maxWriteLen)), maxRead: Math.min(guess, cap(internal._maxReadLen)) };
}
