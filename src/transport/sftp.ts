import { posix } from 'node:path';
import { FurError, isFurError } from '../errors.js';
import type { Capabilities, Destination, ExclusiveRecord, RemoteFile, RemoteStat } from './destination.js';
import { PlainRecord } from './exclusive.js';
import type { RemoteAttrs, RequestLimits, SftpChannel } from './sftp-channel.js';
import { connectSftp, type SftpConnectOptions } from './sftp-connect.js';
import { SftpFile } from './sftp-file.js';
import { chosenSsh, connectOpenssh, type OpensshOptions } from './sftp-openssh.js';
import { channelsAtConnect, openChannels, SftpPool, type Lane, type PoolOptions } from './sftp-pool.js';
import type { SshLikeUrl } from './url.js';

export interface SftpOptions extends SftpConnectOptions, PoolOptions, OpensshOptions {
  /** create the destination directory if it is missing (otherwise that is an error) */
  createRoot?: boolean;
  /**
   * A path (under the destination directory) the caller will stat first, e.g. the file an
   * append continues: statted in the same round trip as the directory's check at connect, and
   * that result answers the first call if it is a stat of this path.
   */
  prefetchStat?: string;
}

// SFTP open flags (draft-ietf-secsh-filexfer-02 §6.3).
const READ = 0x01, WRITE = 0x02, CREAT = 0x08, TRUNC = 0x10, EXCL = 0x20;
const S_IFMT = 0o170000, S_IFDIR = 0o040000;

/**
 * A directory on an SFTP server, over a pool of SFTP channels on one or more SSH connections
 * (sftp-pool.ts): one to start with, more as the link's round trip and rate ask for them.
 */
export class SftpDestination implements Destination {
  readonly url: string;
  readonly capabilities: Capabilities;
  private readonly atomicRename: boolean;
  private closed = false;
  /**
   * Files open for writing: one renamed while open (a new file takes its name after its first
   * commit) must open any further handle under its new name.
   */
  private readonly open = new Set<SftpFile>();
  /**
   * Directories seen to exist since this destination connected, so making one again costs no round trip (the
   * root is checked at connect and a file's directory made before its first upload). One removed
   * meanwhile shows up as the failure of the open that needed it.
   */
  private readonly dirs = new Set<string>();
  /** opens for writing sent and not yet answered, by path (see overwriteRefused) */
  private readonly opening = new Map<string, Set<Promise<Buffer>>>();
  /** a stat sent at connect (SftpOptions.prefetchStat), for the first call only */
  private prefetched?: { path: string; result: Promise<RemoteStat | null> };

  private constructor(
    readonly pool: SftpPool,
    /** absolute remote path of the destination directory */
    readonly root: string,
    extensions: Record<string, string>,
  ) {
    this.url = pool.lanes[0]!.display;
    this.atomicRename = extensions['posix-rename@openssh.com'] === '1';
    this.capabilities = {
      positionalWrite: true,
      // Renaming onto a name that does not exist yet is atomic in plain SFTP v3.
      rename: true,
      atomicReplace: this.atomicRename,
      fsync: pool.fsync,
      maxWriteSize: pool.maxWrite,
      ordered: true,
    };
  }

  static async connect(target: SshLikeUrl<'sftp'>, opts: SftpOptions = {}): Promise<SftpDestination> {
    // the channels a long link needs are asked for with the first one (see channelsAtConnect)
    let early: ReturnType<typeof openChannels> = [];
    let atConnect = 1;
    const connect = chosenSsh(opts) === 'openssh' ? connectOpenssh : connectSftp;
    const session = await connect(target, opts, (client, rttBoundMs) => {
      atConnect = channelsAtConnect(rttBoundMs, opts);
      early = openChannels(client, atConnect - 1);
    });
    try {
      const extensions = session.sftp.extensions;
      const sizes = requestSizes(session.sftp, session.serverSoftware);
      const pool = new SftpPool(target, connect, opts, session, sizes.maxWrite, sizes.maxRead, extensions['fsync@openssh.com'] === '1', early);
      // those a connection cannot carry (OpenSSH's ssh: one each) come on connections of their own
      pool.grow(atConnect);
      const lane = pool.lanes[0]!;
      const home = posix.isAbsolute(target.path)
        ? '/'
        : await pool.op<string>(lane, { op: 'resolve', path: '.' }, (cb) => session.sftp.realpath('.', cb));
      const root = append(home, target.path);
      const dest = new SftpDestination(pool, root, extensions);
      // sent before the directory's check is answered: one round trip for both (read-only, so
      // nothing is done before that check passes; a failed check discards it)
      const peek = opts.prefetchStat === undefined ? undefined : dest.resolve(opts.prefetchStat);
      const peeked = peek === undefined ? undefined : dest.stat(peek);
      peeked?.catch(() => undefined);
      await dest.checkRoot(opts.createRoot ?? false);
      if (peek !== undefined) dest.prefetched = { path: peek, result: peeked! };
      // the round trip is known now: open the channels a long link needs while the caller gets ready
      pool.prewarm();
      return dest;
    } catch (e) {
      void session.client.close();
      throw e;
    }
  }

  /** The stat sent at connect, once: any call after the first must ask the server again. */
  private takePrefetched(): { path: string; result: Promise<RemoteStat | null> } | undefined {
    const pre = this.prefetched;
    this.prefetched = undefined;
    return pre;
  }

  /** the least busy channel, for a request that is not a write */
  private get lane(): Lane {
    return this.pool.lane();
  }

  /** The server's software identification, e.g. `OpenSSH_9.2p1` (used to pick request sizes). */
  get serverSoftware(): string {
    return this.pool.lanes[0]!.serverSoftware;
  }

  private async checkRoot(create: boolean): Promise<void> {
    const st = await this.stat(this.root);
    if (st?.isDirectory) this.dirs.add(this.root);
    if (st === null) {
      if (create) return this.mkdirp(this.root);
      throw new FurError('not-found',
        `remote directory ${this.root} does not exist on ${this.url}; create it first`,
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

  /**
   * `exclusive`: create it, refused (`exists`) when it is there (OPEN with EXCL: OpenSSH's
   * sftp-server maps it to O_EXCL); `existing`: refused (`not-found`) when it is not.
   */
  async openWrite(path: string, opts: { truncate?: boolean; bulk?: boolean; exclusive?: boolean; existing?: boolean } = {}): Promise<RemoteFile> {
    this.takePrefetched();
    const abs = this.resolve(path);
    const open = (lane: Lane, flags: number) => this.pool.op<Buffer>(lane, { op: 'open for writing', path: abs }, (cb) =>
      lane.sftp.open(abs, flags, { mode: 0o644 }, cb));
    const lane = this.lane;
    // READ too: a RemoteFile reads back what it wrote (reopen and append).
    const flags = READ | WRITE | (opts.existing ? 0 : CREAT) | (opts.exclusive ? EXCL : 0) | (opts.truncate ? TRUNC : 0);
    const first = opts.exclusive
      // servers answer a refused EXCL with a bare FAILURE (OpenSSH has no status for EEXIST): ask whether it exists
      ? open(lane, flags).catch(async (e) => {
        if ((e as FurError).tag === 'remote-failed' && (await this.stat(path)) !== null) throw new FurError('exists', `${abs} on ${this.url} exists already`, { url: this.url, path: abs }, { cause: e });
        throw e;
      })
      : open(lane, flags);
    // Bulk: opened on the other open channels in the same round trip. Those opens neither create
    // nor truncate: one the server does before the first fails (the file is then opened on that
    // channel later, as data queues), and one it does after the file was renamed or removed
    // (a stalled channel) must not bring back an empty file under the old name. Writes start
    // once the first open is answered, so after its truncation.
    const others = opts.bulk ? this.pool.lanes.filter((l) => l !== lane).map((l) => ({ lane: l, opening: open(l, READ | WRITE) })) : [];
    // refused before the file exists is expected: seen by addLeg (or dropped with the file)
    for (const o of others) o.opening.catch(() => undefined);
    let handle: Buffer;
    const pending = this.opening.get(abs) ?? new Set<Promise<Buffer>>();
    this.opening.set(abs, pending.add(first));
    try {
      handle = await first;
    } catch (e) {
      for (const o of others) o.opening.then((h) => o.lane.sftp.close(h, () => {}), () => undefined);
      throw (await this.overwriteRefused(e, abs, first)) ?? e;
    } finally {
      pending.delete(first);
      if (pending.size === 0 && this.opening.get(abs) === pending) this.opening.delete(abs);
    }
    const file: SftpFile = new SftpFile(abs, this.pool, { lane, handle }, true, this.pool.fsync, () => this.open.delete(file));
    for (const o of others) file.addLeg(o.lane, o.opening);
    this.open.add(file);
    return file;
  }

  exclusive(path: string): ExclusiveRecord {
    return new PlainRecord(this, path, (mode) => this.openWrite(path, mode === 'create' ? { exclusive: true } : { existing: true }));
  }

  /**
   * Permission to open a file for writing refused while this destination holds it open for
   * writing itself (or opens it, and that open succeeds) is the server's policy, not the file's
   * owner or mode: ProFTPD with AllowOverwrite off (its default) lets nobody open a file that
   * exists for writing. An append writes its commit metadata through a second handle.
   */
  private async overwriteRefused(e: unknown, abs: string, refused: Promise<Buffer>): Promise<FurError | undefined> {
    if (!isFurError(e, 'permission-denied')) return undefined;
    const others = [...(this.opening.get(abs) ?? [])].filter((p) => p !== refused);
    const opened = (await Promise.allSettled(others)).some((r) => r.status === 'fulfilled');
    if (!opened && ![...this.open].some((f) => f.path === abs)) return undefined;
    return new FurError('overwrite-refused',
      `open for writing ${abs} on ${this.url}: the server refuses to open a file for writing once it exists (ProFTPD: AllowOverwrite off); --method append needs that: have it allowed (AllowOverwrite on), or use --method batches`,
      { url: this.url, path: abs }, { cause: e });
  }

  async openRead(path: string): Promise<RemoteFile> {
    this.takePrefetched();
    const abs = this.resolve(path);
    const lane = this.lane;
    const handle = await this.pool.op<Buffer>(lane, { op: 'open for reading', path: abs }, (cb) =>
      lane.sftp.open(abs, READ, {}, cb));
    return new SftpFile(abs, this.pool, { lane, handle }, false, this.pool.fsync);
  }

  async stat(path: string): Promise<RemoteStat | null> {
    const abs = this.resolve(path);
    const pre = this.takePrefetched();
    if (pre?.path === abs) return pre.result;
    try {
      const st = await this.op<RemoteAttrs>({ op: 'stat', path: abs }, (sftp, cb) => sftp.stat(abs, cb));
      return { size: st.size, mtimeMs: st.mtime * 1000, isDirectory: (st.mode & S_IFMT) === S_IFDIR };
    } catch (e) {
      if ((e as FurError).tag === 'not-found') return null;
      throw e;
    }
  }

  async mkdirp(path: string): Promise<void> {
    this.takePrefetched();
    const abs = this.resolve(path);
    // Find the deepest level that exists, then create the missing ones top-down.
    const missing: string[] = [];
    for (let dir = abs; ; dir = posix.dirname(dir)) {
      if (this.dirs.has(dir)) break;
      const st = await this.stat(dir);
      if (st !== null) {
        if (!st.isDirectory) {
          throw new FurError('not-a-directory', `cannot create ${abs} on ${this.url}: ${dir} is a file`, { url: this.url, path: dir });
        }
        this.dirs.add(dir);
        break;
      }
      missing.unshift(dir);
      if (posix.dirname(dir) === dir) break;
    }
    for (const dir of missing) {
      try {
        await this.op({ op: 'create directory', path: dir }, (sftp, cb) => sftp.mkdir(dir, { mode: 0o755 }, cb));
      } catch (e) {
        // Someone else (another fur, another channel) may have created it meanwhile.
        if ((await this.stat(dir))?.isDirectory !== true) throw e;
      }
      this.dirs.add(dir);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    this.takePrefetched();
    const src = this.resolve(from);
    const dst = this.resolve(to);
    const ctx = { op: `rename to ${dst}`, path: src };
    const moved = () => {
      for (const f of this.open) if (f.path === src) f.path = dst;
      this.forgetDirs(src);
    };
    if (this.atomicRename) {
      await this.op(ctx, (sftp, cb) => sftp.ext_openssh_rename(src, dst, cb));
      moved();
      return;
    }
    try {
      await this.op(ctx, (sftp, cb) => sftp.rename(src, dst, cb));
    } catch (e) {
      // Plain SFTP v3 rename refuses to replace; without posix-rename the old file must go first.
      if ((e as FurError).tag !== 'remote-failed' || (await this.stat(dst)) === null) throw e;
      await this.remove(dst);
      await this.op(ctx, (sftp, cb) => sftp.rename(src, dst, cb));
    }
    moved();
  }

  /** Removes a file or an empty directory; a path that is already gone is not an error. */
  async remove(path: string): Promise<void> {
    this.takePrefetched();
    const abs = this.resolve(path);
    let st: RemoteAttrs;
    try {
      // lstat: a symbolic link is removed itself, never what it points to.
      st = await this.op<RemoteAttrs>({ op: 'stat', path: abs }, (sftp, cb) => sftp.lstat(abs, cb));
    } catch (e) {
      if ((e as FurError).tag === 'not-found') return;
      throw e;
    }
    const isDir = (st.mode & S_IFMT) === S_IFDIR;
    if (isDir) this.forgetDirs(abs);
    try {
      await this.op({ op: 'remove', path: abs }, (sftp, cb) => (isDir ? sftp.rmdir(abs, cb) : sftp.unlink(abs, cb)));
    } catch (e) {
      if ((e as FurError).tag !== 'not-found') throw e;
    }
  }

  /** `abs` and what is under it may no longer exist as directories */
  private forgetDirs(abs: string): void {
    for (const d of this.dirs) if (d === abs || d.startsWith(`${abs}/`)) this.dirs.delete(d);
  }

  async list(dir: string): Promise<string[]> {
    this.takePrefetched();
    const abs = this.resolve(dir);
    const entries = await this.op<Array<{ filename: string }>>({ op: 'list', path: abs }, (sftp, cb) => sftp.readdir(abs, cb));
    return entries.map((e) => e.filename).filter((n) => n !== '.' && n !== '..').sort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close(new FurError('destination-closed', `${this.url} was used after it was closed (a bug in the caller)`, { url: this.url }));
  }

  /** One request that is not a write, on the least busy channel. */
  private op<T = void>(ctx: { op: string; path: string }, start: (sftp: SftpChannel, cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    const lane = this.lane;
    return this.pool.op<T>(lane, ctx, (cb) => start(lane.sftp, cb));
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

/**
 * Request sizes for this server. OpenSSH ≥ 8.6 announces its real limits (limits@openssh.com,
 * 255 KiB writes), which the transport fetches at connect. Without them, OpenSSH ≥ 8.6 still
 * takes 255 KiB and anyone else is only trusted with 32 KiB, the size every SFTP server must
 * accept. Never more than the client itself puts in one request (ssh2 would split a larger one
 * into pieces sent one after the other, undoing the pipelining).
 */
export function requestSizes(channel: Pick<SftpChannel, 'limits' | 'cap'>, software: string): RequestLimits {
  const m = /^OpenSSH_(\d+)\.(\d+)/.exec(software);
  const modernOpenSsh = m !== null && (Number(m[1]) > 8 || (Number(m[1]) === 8 && Number(m[2]) >= 6));
  const guess = modernOpenSsh ? 255 * 1024 : 32 * 1024;
  const server = channel.limits ?? { maxWrite: guess, maxRead: guess };
  return { maxWrite: Math.min(server.maxWrite, channel.cap.maxWrite), maxRead: Math.min(server.maxRead, channel.cap.maxRead) };
}
