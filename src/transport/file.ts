import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FurError } from '../errors.js';
import type { Capabilities, Destination, ExclusiveRecord, RemoteFile, RemoteStat } from './destination.js';
import { PlainRecord } from './exclusive.js';
import type { Egress } from './egress.js';
import { WriteTracker } from './inflight.js';

/**
 * A directory on a local disk or a mounted share (NFS, SMB, a FUSE mount). POSIX rename and
 * fsync give the same commit guarantees as a local file system, as far as the mount honours them.
 */
export class FileDestination implements Destination {
  readonly url: string;
  readonly capabilities: Capabilities = {
    positionalWrite: true,
    rename: true,
    fsync: true,
    atomicReplace: true,
  };

  private constructor(readonly root: string, private readonly egress?: Egress) {
    this.url = pathToFileURL(root).href;
  }

  /**
   * The root must already exist: when a share is not mounted its mount point is an ordinary local
   * directory (or missing), and creating it would silently fill the local disk instead.
   */
  static async open(root: string, egress?: Egress): Promise<FileDestination> {
    const abs = resolve(root);
    const st = await stat(abs).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        throw new FurError('not-found',
          `destination directory ${abs} does not exist; create it, or mount the share if it is one`,
          { path: abs }, { cause: e });
      }
      throw fsError(e, abs, 'open destination');
    });
    if (!st.isDirectory()) {
      throw new FurError('not-a-directory', `destination ${abs} is not a directory`, { path: abs });
    }
    return new FileDestination(abs, egress);
  }

  /** Relative paths are under the root; absolute ones are used as they are. */
  resolve(path: string): string {
    return resolve(this.root, path);
  }

  /** `exclusive`: create it, refused (`exists`) when it is there; `existing`: refused (`not-found`) when it is not */
  async openWrite(path: string, opts: { truncate?: boolean; exclusive?: boolean; existing?: boolean } = {}): Promise<RemoteFile> {
    const abs = this.resolve(path);
    const flags = constants.O_RDWR | (opts.existing ? 0 : constants.O_CREAT) | (opts.exclusive ? constants.O_EXCL : 0) | (opts.truncate ? constants.O_TRUNC : 0);
    const fh = await open(abs, flags, 0o644).catch((e: NodeJS.ErrnoException) => {
      if (opts.exclusive && e.code === 'EEXIST') throw new FurError('exists', `${abs} exists already`, { path: abs }, { cause: e });
      throw fsError(e, abs, 'open for writing');
    });
    return new LocalFile(abs, fh, true, this.egress);
  }

  exclusive(path: string): ExclusiveRecord {
    return new PlainRecord(this, path, (mode) => this.openWrite(path, mode === 'create' ? { exclusive: true } : { existing: true }));
  }

  async openRead(path: string): Promise<RemoteFile> {
    const abs = this.resolve(path);
    const fh = await open(abs, constants.O_RDONLY).catch((e) => { throw fsError(e, abs, 'open for reading'); });
    return new LocalFile(abs, fh, false);
  }

  async stat(path: string): Promise<RemoteStat | null> {
    const abs = this.resolve(path);
    try {
      const st = await stat(abs);
      return { size: st.size, mtimeMs: st.mtimeMs, isDirectory: st.isDirectory() };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw fsError(e, abs, 'stat');
    }
  }

  async mkdirp(path: string): Promise<void> {
    const abs = this.resolve(path);
    await mkdir(abs, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOTDIR' || e.code === 'EEXIST') {
        throw new FurError('not-a-directory', `cannot create ${abs}: a file is in the way (${e.code})`, { path: abs }, { cause: e });
      }
      throw fsError(e, abs, 'create directory');
    });
  }

  async rename(from: string, to: string): Promise<void> {
    const src = this.resolve(from);
    const dst = this.resolve(to);
    await rename(src, dst).catch((e) => { throw fsError(e, src, `rename to ${dst}`); });
    // The rename is the commit: it is durable only once the directory entry is.
    await syncDirectory(dirname(dst));
  }

  /** Removes a file or an empty directory; a path that is already gone is not an error. */
  async remove(path: string): Promise<void> {
    const abs = this.resolve(path);
    // lstat: a symbolic link is removed itself, never the directory it points to.
    const st = await lstat(abs).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw fsError(e, abs, 'stat');
    });
    if (st === null) return;
    const op = st.isDirectory() ? rmdir(abs) : rm(abs, { force: true });
    await op.catch((e) => { throw fsError(e, abs, 'remove'); });
  }

  async list(dir: string): Promise<string[]> {
    const abs = this.resolve(dir);
    const names = await readdir(abs).catch((e) => { throw fsError(e, abs, 'list'); });
    return names.sort();
  }

  async close(): Promise<void> {}
}

class LocalFile implements RemoteFile {
  private readonly writes = new WriteTracker();
  private closed = false;
  private dirSynced: boolean;

  constructor(readonly path: string, private readonly fh: FileHandle, writable: boolean, private readonly egress?: Egress) {
    // Files opened for reading need no directory sync; new files need one on first sync.
    this.dirSynced = !writable;
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    const refused = this.refuse();
    if (refused) return refused;
    return this.writes.track(this.writeAll(offset, data));
  }

  private async writeAll(offset: number, data: Uint8Array): Promise<void> {
    const turn = this.egress?.take(data.length);
    if (turn) await turn;
    let done = 0;
    // pwrite may write less than asked (signals, some network file systems); finish the rest.
    while (done < data.length) {
      const { bytesWritten } = await this.fh
        .write(data, done, data.length - done, offset + done)
        .catch((e) => { throw fsError(e, this.path, 'write'); });
      if (bytesWritten === 0) {
        throw new FurError('remote-write-failed', `writing ${this.path} made no progress at offset ${offset + done}; check free space and quota`, { path: this.path });
      }
      done += bytesWritten;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.ensureOpen();
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh
        .read(out, got, length - got, offset + got)
        .catch((e) => { throw fsError(e, this.path, 'read'); });
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === length ? out : out.slice(0, got);
  }

  async size(): Promise<number> {
    this.ensureOpen();
    await this.writes.barrier();
    const st = await this.fh.stat().catch((e) => { throw fsError(e, this.path, 'stat'); });
    return st.size;
  }

  async flush(): Promise<void> {
    await this.writes.barrier();
  }

  async truncate(size: number): Promise<void> {
    this.ensureOpen();
    await this.writes.barrier();
    await this.fh.truncate(size).catch((e) => { throw fsError(e, this.path, 'truncate'); });
  }

  async sync(): Promise<void> {
    this.ensureOpen();
    await this.writes.barrier();
    await this.fh.sync().catch((e) => { throw fsError(e, this.path, 'fsync'); });
    if (!this.dirSynced) {
      await syncDirectory(dirname(this.path));
      this.dirSynced = true;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.writes.barrier()]);
    await this.fh.close().catch((e) => this.writes.fail(fsError(e, this.path, 'close')));
    if (this.writes.error !== undefined) throw this.writes.error;
  }

  private refuse(): Promise<void> | undefined {
    let e: unknown = this.writes.error;
    if (e === undefined && this.closed) e = closedError(this.path);
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

/** Make a directory entry (a new or renamed file) durable. Some file systems cannot; that is fine. */
async function syncDirectory(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // EINVAL/ENOTSUP/EISDIR/EPERM/EBADF: the file system (or OS) does not sync directories.
    if (!['EINVAL', 'ENOTSUP', 'EISDIR', 'EPERM', 'EBADF', 'EACCES'].includes(code ?? '')) {
      throw fsError(e, dir, 'fsync directory');
    }
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Turn a Node file system error into a FurError that says what to do about it. */
export function fsError(e: unknown, path: string, op: string): FurError {
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? 'unknown';
  const fields = { path, op, code };
  switch (code) {
    case 'ENOENT':
      return new FurError('not-found', `${op} ${path}: no such file or directory`, fields, { cause: e });
    case 'EACCES': case 'EPERM': case 'EROFS':
      return new FurError('permission-denied',
        `${op} ${path}: permission denied (${code}); check the owner and mode of the directory, or the share's mount options`,
        fields, { cause: e });
    case 'ENOSPC': case 'EDQUOT': case 'EFBIG':
      return new FurError('remote-write-failed',
        `${op} ${path} failed (${code}): the destination is full or over quota; free space or raise the quota`,
        fields, { cause: e });
    case 'ENOTDIR': case 'EISDIR': case 'EEXIST': case 'ENOTEMPTY':
      return new FurError('wrong-type', `${op} ${path}: ${err.message}`, fields, { cause: e });
    default:
      return new FurError('io-failed', `${op} ${path} failed: ${err?.message ?? String(e)}`, fields, { cause: e });
  }
}
