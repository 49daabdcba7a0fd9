import { constants, type Stats as FsStats } from 'node:fs';
import {
  chmod, chown, lstat, mkdir, open, readdir, readlink, realpath, rename, rmdir, stat, truncate, unlink, utimes,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';

/** SFTP v3 status codes and open flags (draft-ietf-secsh-filexfer-02). */
const OK = 0, EOF = 1, NO_SUCH_FILE = 2, PERMISSION_DENIED = 3, FAILURE = 4, OP_UNSUPPORTED = 8;
const F_READ = 0x01, F_WRITE = 0x02, F_APPEND = 0x04, F_CREAT = 0x08, F_TRUNC = 0x10, F_EXCL = 0x20;
/** Largest READ reply; every client's packet limit is at least this plus headers. */
const MAX_READ = 255 * 1024;
const DIR_BATCH = 100;

/** What the server saw; tests use it to check that clients pipeline. */
export interface ServerStats {
  /** requests received and not yet answered, now */
  pending: number;
  /** the most requests ever pending at once */
  maxPending: number;
  writeRequests: number;
  bytesWritten: number;
  fsyncs: number;
  /** SFTP sessions started */
  sessions: number;
  /** how many sessions had started when the first request (after INIT) came in */
  sessionsAtFirstRequest?: number;
  /** requests received, by kind (`STAT`, `OPEN`, …; WRITE is counted in writeRequests) */
  requests: Record<string, number>;
  /** public keys offered without a signature (a client asking whether the key would do) */
  keyQueries: number;
}

export function emptyStats(): ServerStats {
  return { pending: 0, maxPending: 0, writeRequests: 0, bytesWritten: 0, fsyncs: 0, sessions: 0, requests: {}, keyQueries: 0 };
}

export interface ServeOptions {
  /** real path (symbolic links resolved) of the directory served as `/` */
  root: string;
  readOnly: boolean;
  /** shared by all sessions of one server: bytes WRITE may still store */
  quota?: { left: number };
  stats: ServerStats;
}

/** A request the server refuses with a given status. */
class Refusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

type Handle =
  | { kind: 'file'; fh: FileHandle; path: string }
  | { kind: 'dir'; real: string; names?: string[]; pos: number };

/**
 * Serves one SFTP session from a local directory, as if it were `/` (a chroot). Every path is
 * resolved inside the root: `..` that climbs out, and symbolic links whose target is outside,
 * are refused with PERMISSION_DENIED. Requests run one at a time in arrival order, as OpenSSH's
 * sftp-server does, so writes, fsync and close on a handle happen in the order they were sent.
 */
export class SftpService {
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly sftp: SFTPWrapper, private readonly opts: ServeOptions) {
    const stats = opts.stats;
    stats.sessions++;
    // ssh2 hands each request's arguments untyped; the handler for the event names their types
    const on = <A extends unknown[]>(event: string, run: (id: number, ...args: A) => Promise<void>): void => {
      sftp.on(event, (id: number, ...args: unknown[]) => {
        stats.sessionsAtFirstRequest ??= stats.sessions;
        stats.requests[event] = (stats.requests[event] ?? 0) + 1;
        this.enqueue(id, () => run.call(this, id, ...(args as A)));
      });
    };
    on('OPEN', this.open);
    on('READ', this.read);
    // WRITE data may sit in a buffer ssh2 reuses for the next packet; copy it before queueing.
    sftp.on('WRITE', (id: number, h: Buffer, off: number, data: Buffer) => {
      const handle = Buffer.from(h);
      const copy = Buffer.from(data);
      this.enqueue(id, () => this.write(id, handle, off, copy));
    });
    on('FSTAT', this.fstat);
    on('FSETSTAT', this.fsetstat);
    on('CLOSE', this.close);
    on('OPENDIR', this.opendir);
    on('READDIR', this.readdir);
    on('LSTAT', (id, p: string) => this.stat(id, p, false));
    on('STAT', (id, p: string) => this.stat(id, p, true));
    on('REMOVE', this.remove);
    on('RMDIR', this.rmdir);
    on('REALPATH', this.realpath);
    on('READLINK', this.readlink);
    on('SETSTAT', this.setstat);
    on('MKDIR', this.mkdir);
    on('RENAME', (id, from: string, to: string) => this.rename(id, from, to, false));
    on('SYMLINK', async () => {
      // Links made by clients could point anywhere; the root stays closed.
      throw new Refusal(OP_UNSUPPORTED, 'this server does not create symbolic links');
    });
    on('EXTENDED', this.extended);
    const release = (): void => this.releaseAll();
    sftp.on('end', release);
    sftp.on('close', release);
  }

  private enqueue(id: number, run: () => Promise<void>): void {
    const stats = this.opts.stats;
    stats.pending++;
    stats.maxPending = Math.max(stats.maxPending, stats.pending);
    this.queue = this.queue
      .then(run)
      .catch((e) => this.reply(() => this.sftp.status(id, ...statusFor(e))))
      .finally(() => { stats.pending--; });
  }

  /** Replies to a closed channel are dropped; that must not stop the queue. */
  private reply(send: () => void): void {
    try {
      send();
    } catch {
      // channel gone
    }
  }

  private ok(id: number): void {
    this.reply(() => this.sftp.status(id, OK));
  }

  private releaseAll(): void {
    for (const h of this.handles.values()) if (h.kind === 'file') h.fh.close().catch(() => {});
    this.handles.clear();
  }

  // --- paths -------------------------------------------------------------------------------

  /** Resolve `..` and `.` by text; climbing above `/` is an escape. */
  private lexical(path: string): { virtual: string; real: string } {
    const parts: string[] = [];
    for (const seg of path.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (parts.length === 0) throw new Refusal(PERMISSION_DENIED, `${path} is outside the served directory`);
        parts.pop();
      } else {
        parts.push(seg);
      }
    }
    return { virtual: `/${parts.join('/')}`, real: parts.length ? join(this.opts.root, ...parts) : this.opts.root };
  }

  private inside(real: string): boolean {
    return real === this.opts.root || real.startsWith(this.opts.root + sep);
  }

  /**
   * The local path for a client path, after checking that symbolic links along it stay inside
   * the root. `follow` says whether the operation follows a link in the last component.
   */
  private async local(path: string, follow: boolean): Promise<string> {
    const { real } = this.lexical(path);
    let probe = follow || real === this.opts.root ? real : dirname(real);
    for (;;) {
      try {
        const resolved = await realpath(probe);
        if (!this.inside(resolved)) throw new Refusal(PERMISSION_DENIED, `${path} leads outside the served directory`);
        return real;
      } catch (e) {
        if (e instanceof Refusal) throw e;
        // The part that exists must be inside; what does not exist yet cannot lead anywhere.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && probe !== this.opts.root) {
          probe = dirname(probe);
          continue;
        }
        return real; // other errors (ENOTDIR, EACCES) are reported by the operation itself
      }
    }
  }

  private writable(): void {
    if (this.opts.readOnly) throw new Refusal(PERMISSION_DENIED, 'this server is read-only');
  }

  private file(h: Buffer): Extract<Handle, { kind: 'file' }> {
    const entry = h.length === 4 ? this.handles.get(h.readUInt32BE(0)) : undefined;
    if (entry?.kind !== 'file') throw new Refusal(FAILURE, 'invalid file handle');
    return entry;
  }

  private newHandle(id: number, entry: Handle): void {
    const n = this.nextHandle++;
    this.handles.set(n, entry);
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(n);
    this.reply(() => this.sftp.handle(id, buf));
  }

  // --- requests ----------------------------------------------------------------------------

  private async open(id: number, path: string, flags: number, attrs: Partial<Attributes>): Promise<void> {
    if (flags & (F_WRITE | F_APPEND | F_CREAT | F_TRUNC)) this.writable();
    const real = await this.local(path, true);
    let fsFlags = flags & F_WRITE ? (flags & F_READ ? constants.O_RDWR : constants.O_WRONLY) : constants.O_RDONLY;
    if (flags & F_CREAT) fsFlags |= constants.O_CREAT;
    if (flags & F_TRUNC) fsFlags |= constants.O_TRUNC;
    if (flags & F_EXCL) fsFlags |= constants.O_EXCL;
    if (flags & F_APPEND) fsFlags |= constants.O_APPEND;
    const mode = typeof attrs?.mode === 'number' ? attrs.mode & 0o7777 : 0o644;
    const fh = await open(real, fsFlags, mode);
    this.newHandle(id, { kind: 'file', fh, path });
  }

  private async read(id: number, h: Buffer, offset: number, len: number): Promise<void> {
    const { fh } = this.file(h);
    const buf = Buffer.allocUnsafe(Math.min(len, MAX_READ));
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    if (bytesRead === 0) return this.reply(() => this.sftp.status(id, EOF));
    this.reply(() => this.sftp.data(id, buf.subarray(0, bytesRead)));
  }

  private async write(id: number, h: Buffer, offset: number, data: Buffer): Promise<void> {
    const { fh } = this.file(h);
    const quota = this.opts.quota;
    if (quota) {
      // Emulates a full disk the way OpenSSH reports ENOSPC: a bare FAILURE.
      if (data.length > quota.left) throw new Refusal(FAILURE, 'No space left on device');
      quota.left -= data.length;
    }
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
    this.opts.stats.writeRequests++;
    this.opts.stats.bytesWritten += data.length;
    this.ok(id);
  }

  private async fstat(id: number, h: Buffer): Promise<void> {
    const st = await this.file(h).fh.stat();
    this.reply(() => this.sftp.attrs(id, toAttrs(st)));
  }

  private async fsetstat(id: number, h: Buffer, attrs: Partial<Attributes>): Promise<void> {
    this.writable();
    const { fh } = this.file(h);
    if (attrs.size !== undefined) await fh.truncate(attrs.size);
    if (attrs.mode !== undefined) await fh.chmod(attrs.mode & 0o7777);
    if (attrs.uid !== undefined && attrs.gid !== undefined) await fh.chown(attrs.uid, attrs.gid);
    if (attrs.atime !== undefined || attrs.mtime !== undefined) {
      const st = await fh.stat();
      await fh.utimes(attrs.atime ?? st.atimeMs / 1000, attrs.mtime ?? st.mtimeMs / 1000);
    }
    this.ok(id);
  }

  private async setstat(id: number, path: string, attrs: Partial<Attributes>): Promise<void> {
    this.writable();
    const real = await this.local(path, true);
    if (attrs.size !== undefined) await truncate(real, attrs.size);
    if (attrs.mode !== undefined) await chmod(real, attrs.mode & 0o7777);
    if (attrs.uid !== undefined && attrs.gid !== undefined) await chown(real, attrs.uid, attrs.gid);
    if (attrs.atime !== undefined || attrs.mtime !== undefined) {
      const st = await stat(real);
      await utimes(real, attrs.atime ?? st.atimeMs / 1000, attrs.mtime ?? st.mtimeMs / 1000);
    }
    this.ok(id);
  }

  private async close(id: number, h: Buffer): Promise<void> {
    const n = h.length === 4 ? h.readUInt32BE(0) : -1;
    const entry = this.handles.get(n);
    if (!entry) throw new Refusal(FAILURE, 'invalid handle');
    this.handles.delete(n);
    if (entry.kind === 'file') await entry.fh.close();
    this.ok(id);
  }

  private async opendir(id: number, path: string): Promise<void> {
    const real = await this.local(path, true);
    const st = await stat(real);
    if (!st.isDirectory()) throw new Refusal(NO_SUCH_FILE, `${path} is not a directory`);
    this.newHandle(id, { kind: 'dir', real, pos: 0 });
  }

  private async readdir(id: number, h: Buffer): Promise<void> {
    const entry = h.length === 4 ? this.handles.get(h.readUInt32BE(0)) : undefined;
    if (entry?.kind !== 'dir') throw new Refusal(FAILURE, 'invalid directory handle');
    entry.names ??= (await readdir(entry.real)).sort();
    if (entry.pos >= entry.names.length) return this.reply(() => this.sftp.status(id, EOF));
    const batch = entry.names.slice(entry.pos, entry.pos + DIR_BATCH);
    entry.pos += batch.length;
    const out: FileEntry[] = [];
    for (const name of batch) {
      // An entry removed since the listing started is skipped, as readdir(3) would.
      const st = await lstat(join(entry.real, name)).catch(() => null);
      if (st) out.push({ filename: name, longname: longname(name, st), attrs: toAttrs(st) });
    }
    if (out.length === 0) return this.readdir(id, h);
    this.reply(() => this.sftp.name(id, out));
  }

  private async stat(id: number, path: string, follow: boolean): Promise<void> {
    const real = await this.local(path, follow);
    const st = follow ? await stat(real) : await lstat(real);
    this.reply(() => this.sftp.attrs(id, toAttrs(st)));
  }

  private async remove(id: number, path: string): Promise<void> {
    this.writable();
    await unlink(await this.local(path, false));
    this.ok(id);
  }

  private async rmdir(id: number, path: string): Promise<void> {
    this.writable();
    const real = await this.local(path, false);
    if (real === this.opts.root) throw new Refusal(PERMISSION_DENIED, 'the served directory itself cannot be removed');
    await rmdir(real);
    this.ok(id);
  }

  private async mkdir(id: number, path: string, attrs: Partial<Attributes>): Promise<void> {
    this.writable();
    const real = await this.local(path, false);
    await mkdir(real, typeof attrs?.mode === 'number' ? attrs.mode & 0o7777 : 0o755);
    this.ok(id);
  }

  private async realpath(id: number, path: string): Promise<void> {
    const { virtual } = this.lexical(path);
    this.reply(() => this.sftp.name(id, [{ filename: virtual, longname: virtual, attrs: {} as Attributes }]));
  }

  private async readlink(id: number, path: string): Promise<void> {
    const real = await this.local(path, false);
    let target = await readlink(real);
    if (isAbsolute(target)) {
      if (!this.inside(target)) throw new Refusal(PERMISSION_DENIED, `${path} points outside the served directory`);
      target = `/${relative(this.opts.root, target).split(sep).join('/')}`;
    }
    this.reply(() => this.sftp.name(id, [{ filename: target, longname: target, attrs: {} as Attributes }]));
  }

  /** SFTP v3 rename refuses an existing target; posix-rename@openssh.com replaces it. */
  private async rename(id: number, from: string, to: string, replace: boolean): Promise<void> {
    this.writable();
    const src = await this.local(from, false);
    const dst = await this.local(to, false);
    if (src === this.opts.root || dst === this.opts.root) throw new Refusal(PERMISSION_DENIED, 'the served directory itself cannot be renamed');
    if (!replace && (await lstat(dst).catch(() => null))) throw new Refusal(FAILURE, `${to} already exists`);
    await rename(src, dst);
    this.ok(id);
  }

  private async extended(id: number, name: string, data: Buffer | undefined): Promise<void> {
    const args = strings(data ?? Buffer.alloc(0));
    switch (name) {
      case 'posix-rename@openssh.com':
        if (args.length < 2) throw new Refusal(FAILURE, 'malformed posix-rename request');
        return this.rename(id, args[0].toString('utf8'), args[1].toString('utf8'), true);
      case 'fsync@openssh.com': {
        if (args.length < 1) throw new Refusal(FAILURE, 'malformed fsync request');
        await this.file(args[0]).fh.sync();
        this.opts.stats.fsyncs++;
        return this.ok(id);
      }
      default:
        throw new Refusal(OP_UNSUPPORTED, `extension ${name} is not supported`);
    }
  }
}

/** Split SFTP `string` fields (uint32 length + bytes). */
function strings(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p + 4 <= buf.length) {
    const n = buf.readUInt32BE(p);
    if (p + 4 + n > buf.length) break;
    out.push(Buffer.from(buf.subarray(p + 4, p + 4 + n)));
    p += 4 + n;
  }
  return out;
}

const systemErrors = getSystemErrorMap();

/**
 * The status OpenSSH's sftp-server would send for an error. Messages name the error but never
 * the local path, which would reveal where the root lives.
 */
function statusFor(e: unknown): [number, string] {
  if (e instanceof Refusal) return [e.status, e.message];
  const err = e as NodeJS.ErrnoException;
  const text = (err.errno !== undefined && systemErrors.get(err.errno)?.[1]) || err.code || 'failure';
  switch (err.code) {
    case 'ENOENT': case 'ENOTDIR': case 'ELOOP':
      return [NO_SUCH_FILE, text];
    case 'EACCES': case 'EPERM': case 'EROFS':
      return [PERMISSION_DENIED, text];
    default:
      return [FAILURE, text];
  }
}

function toAttrs(st: FsStats): Attributes {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

/** The `ls -l` line SFTP v3 clients show for a directory entry. */
function longname(name: string, st: FsStats): string {
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : '-';
  const rwx = 'rwxrwxrwx'.split('').map((c, i) => (st.mode & (0o400 >> i) ? c : '-')).join('');
  const date = new Date(st.mtimeMs).toISOString().slice(0, 16).replace('T', ' ');
  return `${type}${rwx} ${st.nlink} ${st.uid} ${st.gid} ${st.size} ${date} ${name}`;
}
