/**
 * A directory on an FTP server over TLS (FTPS). FTP stores and appends whole streams but cannot
 * write at an offset, so files are built locally (StagedFile) and uploaded in one stream under a
 * temporary name, then renamed into place; `append` is refused (capabilities.positionalWrite is
 * false). Several control connections carry several files at once, one transfer each.
 *
 * An upload cut by a lost connection resumes on a fresh connection from what the server holds:
 * SIZE, then APPE with the rest (or from the start where APPE is refused: REST + STOR is not
 * trusted, see upload).
 */
import type { Client } from 'basic-ftp';
import { FTPError } from 'basic-ftp';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FurError, remoteFields } from '../errors.js';
import type { Capabilities, Destination, ExclusiveRecord, RemoteFile, RemoteStat } from './destination.js';
import { ClaimsRecord } from './exclusive.js';
import { connectFtps, trustContext, type FtpsConnectOptions } from './ftps-connect.js';
import type { DataTlsOrder } from './ftps-data.js';
import { ftpError, isConnectionError, type FtpOp } from './ftps-errors.js';
import { pacedStream, type Egress } from './egress.js';
import { parseMlst, readFeatures, useFeatures, type FtpFeatures } from './ftps-features.js';
import { FtpsPool } from './ftps-pool.js';
import { retrieveRange, type CutHabit } from './ftps-read.js';
import { StagedFile, type StagedContent } from './ftps-staged.js';
import { trustedCertificates, type TlsTrustOptions } from './ftps-tls.js';
import type { SshLikeUrl } from './url.js';
import { WindowedReadFile } from './windowed-read.js';

export interface FtpsOptions extends Omit<FtpsConnectOptions, 'ca'>, TlsTrustOptions {
  /** control connections at most, hence transfers at once (default 4) */
  connections?: number;
  /** create the destination directory if it is missing (otherwise that is an error) */
  createRoot?: boolean;
  /** attempts per upload when the connection is lost (default 4) */
  uploadAttempts?: number;
  /** bytes a file may hold in memory while it is built before it spills to a local temporary file */
  stageMemoryLimit?: number;
  /** called with a one-line warning (an upload restarted from the beginning, …) */
  warn?: (message: string) => void;
  /** where uploads leave: counted, and paced by --bwlimit */
  egress?: Egress;
}

export class FtpsDestination implements Destination {
  readonly url: string;
  readonly capabilities: Capabilities = {
    // FTP stores whole streams: files are staged locally and uploaded at close
    positionalWrite: false,
    rename: true,
    // RNTO onto an existing name replaces it on POSIX servers but is refused by others
    atomicReplace: false,
    fsync: false,
  };
  /** commands the server refused as unknown (502/500/504), not asked again */
  private readonly unsupported = new Set<string>();
  /** whether the server answers a transfer cut short (see ftps-read.ts) */
  private readonly cutHabit: CutHabit = {};

  private constructor(
    private readonly pool: FtpsPool, readonly root: string, private readonly features: FtpFeatures, private readonly target: SshLikeUrl<'ftps'>,
    private readonly opts: FtpsOptions,
    /** borrow connections ahead of everyone else (the lease's view: see exclusive) */
    private readonly urgent = false,
  ) {
    this.url = target.display;
  }

  static async connect(target: SshLikeUrl<'ftps'>, opts: FtpsOptions = {}): Promise<FtpsDestination> {
    const ca = await trustedCertificates(opts);
    const secureContext = trustContext(ca);
    const dataTls: DataTlsOrder = {};
    const first = await connectFtps(target, { ...opts, ca, secureContext, dataTls });
    let root: string;
    let features: FtpFeatures;
    try {
      // asked once: every connection to one server offers the same
      features = await readFeatures(first);
      await useFeatures(first, features);
      const home = posix.isAbsolute(target.path) ? '/' : await first.pwd();
      root = join(home, target.path);
    } catch (e) {
      first.close();
      throw ftpError(e, { op: 'find the login directory', path: target.path, url: target.display });
    }
    const open = async () => {
      const c = await connectFtps(target, { ...opts, ca, secureContext, dataTls });
      await useFeatures(c, features);
      return c;
    };
    const pool = new FtpsPool(open, Math.max(1, opts.connections ?? 4), target.display);
    pool.adopt(first);
    const dest = new FtpsDestination(pool, root, features, target, opts);
    try {
      await dest.checkRoot(opts.createRoot ?? false);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return dest;
  }

  private async checkRoot(create: boolean): Promise<void> {
    const st = await this.stat(this.root);
    if (st === null) {
      if (create) return this.mkdirp(this.root);
      throw new FurError('not-found', `remote directory ${this.root} does not exist on ${this.url}; create it first`, { url: this.url, path: this.root });
    }
    if (!st.isDirectory) throw new FurError('not-a-directory', `${this.root} on ${this.url} is not a directory`, { url: this.url, path: this.root });
  }

  resolve(path: string): string { return join(this.root, path); }

  /** a pooled connection for `fn` */
  private borrow<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    return this.pool.use(fn, this.urgent);
  }

  /**
   * Run `fn` on a pooled connection; a connection lost before `fn` changed anything is replaced
   * and `fn` tried once more when `idempotent`.
   */
  private async run<T>(ctx: Omit<FtpOp, 'url'>, fn: (c: Client) => Promise<T>, idempotent = true): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.borrow(fn);
      } catch (e) {
        if (idempotent && attempt === 0 && isConnectionError(e) && !(e instanceof FurError)) continue;
        throw ftpError(e, { ...ctx, url: this.url });
      }
    }
  }

  async openWrite(path: string, opts: { truncate?: boolean } = {}): Promise<RemoteFile> {
    const abs = this.resolve(path);
    const file = new StagedFile(abs, (content) => this.upload(abs, content), { memoryLimit: this.opts.stageMemoryLimit });
    if (!opts.truncate) {
      const st = await this.stat(abs);
      if (st && !st.isDirectory && st.size > 0) await file.preload(await this.download(abs, 0, st.size));
    }
    return file;
  }

  async openRead(path: string): Promise<RemoteFile> {
    const abs = this.resolve(path);
    const st = await this.stat(abs);
    if (st === null) throw new FurError('not-found', `open for reading ${abs} on ${this.url}: no such file`, { url: this.url, path: abs });
    if (st.isDirectory) throw new FurError('wrong-type', `open for reading ${abs} on ${this.url}: it is a directory`, { url: this.url, path: abs });
    return new WindowedReadFile(abs, st.size, (o, n) => this.download(abs, o, n));
  }

  /**
   * Store `content` at `abs` in one stream. A lost connection resumes from the size the server
   * reports (APPE), after that size has settled: the old session may still be
   * writing what it received.
   */
  private async upload(abs: string, content: StagedContent): Promise<void> {
    const attempts = this.opts.uploadAttempts ?? 4;
    const ctx = { op: 'upload', path: abs, url: this.url };
    let from = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.borrow(async (c) => {
          if (from > 0 && this.unsupported.has('APPE')) {
            // REST + STOR is not used: some servers truncate the file before writing at the
            // offset (ftp-srv 4.6 opens it with 'w+'), which no SIZE check can tell from a good resume
            this.opts.warn?.(`${this.url}: the server does not support APPE, so the interrupted upload of ${abs} starts again from the beginning`);
            from = 0;
          }
          if (from === 0) {
            await c.uploadFrom(pacedStream(content.stream(0), this.opts.egress), abs);
          } else {
            try {
              await c.appendFrom(pacedStream(content.stream(from), this.opts.egress), abs);
            } catch (e) {
              // 500/502/504: unknown command; 550 from a server that forbids appending (vsftpd's cmds_allowed)
              if (!(e instanceof FTPError) || ![500, 502, 504, 550].includes(e.code)) throw e;
              this.unsupported.add('APPE');
              // a refused transfer can leave the data connection half set up: go on with a fresh one
              c.close();
              throw new RestartUpload();
            }
          }
          const size = await c.size(abs);
          if (size !== content.size) {
            throw new FurError('remote-write-failed', `upload ${abs} on ${this.url}: the server holds ${size} bytes after the transfer, not ${content.size}; is it out of space?`,
              { url: this.url, path: abs, size, expected: content.size });
          }
        });
        return;
      } catch (e) {
        if (e instanceof RestartUpload) { attempt--; continue; }
        if (e instanceof FurError && e.tag !== 'connection-lost') throw e;
        if ((!isConnectionError(e) && !(e instanceof FurError)) || attempt >= attempts) throw ftpError(e, ctx);
        await sleep(Math.min(2000, 100 * 2 ** attempt));
        from = await this.settledSize(abs).catch(() => 0);
        if (from > content.size) from = 0;
      }
    }
  }

  /** The size of a file being written by a lost session, once it stops changing. */
  private async settledSize(abs: string): Promise<number> {
    let last = -1;
    for (let i = 0; i < 20; i++) {
      const st = await this.stat(abs);
      const size = st?.size ?? 0;
      if (size === last) return size;
      last = size;
      await sleep(150);
    }
    return last;
  }

  /** `length` bytes from `offset` (fewer at the end of the file), on a pooled connection that stays open. */
  private download(abs: string, offset: number, length: number): Promise<Uint8Array> {
    return this.run({ op: 'read', path: abs }, (c) => retrieveRange(c, abs, offset, length, this.cutHabit));
  }

  async stat(path: string): Promise<RemoteStat | null> {
    const abs = this.resolve(path);
    return this.run({ op: 'stat', path: abs }, async (c) => {
      if (this.features.mlst) {
        try {
          const st = parseMlst((await c.send(`MLST ${abs}`)).message);
          if (st) return st;
        } catch (e) {
          if (e instanceof FTPError && (e.code === 550 || e.code === 450)) return null;
          // any other refusal: ask the way every server answers
          if (!(e instanceof FTPError)) throw e;
        }
      }
      // CWD tells a directory from a file on every server (SIZE of a directory answers on some)
      if (await isDirectory(c, abs)) return { size: 0, mtimeMs: 0, isDirectory: true };
      let size: number;
      try {
        size = await c.size(abs);
      } catch (e) {
        if (e instanceof FTPError && (e.code === 550 || e.code === 450)) return null;
        // a 213 reply without a number (ftp-srv answers "213 File status" for an empty file): ask LIST
        if (!(e instanceof FTPError) && /parse response to command 'SIZE/.test(String((e as Error)?.message))) {
          const entry = (await c.list(posix.dirname(abs))).find((x) => posix.basename(x.name) === posix.basename(abs));
          if (!entry) return null;
          size = entry.size;
        } else throw e;
      }
      // MDTM is an extension (RFC 3659); without it the time is unknown
      const mtimeMs = this.unsupported.has('MDTM') ? 0 : await c.lastMod(abs).then((d) => d.getTime(), (e) => {
        if (e instanceof FTPError && [500, 502, 504].includes(e.code)) this.unsupported.add('MDTM');
        else if (!(e instanceof FTPError)) throw e;
        return 0;
      });
      return { size, mtimeMs, isDirectory: false };
    });
  }

  async mkdirp(path: string): Promise<void> {
    const abs = this.resolve(path);
    const missing: string[] = [];
    for (let dir = abs; ; dir = posix.dirname(dir)) {
      let st = await this.stat(dir);
      // stat is CWD, then SIZE: a directory another client made between the two looks like a file
      if (st !== null && !st.isDirectory) st = await this.stat(dir);
      if (st !== null) {
        if (!st.isDirectory) throw new FurError('not-a-directory', `cannot create ${abs} on ${this.url}: ${dir} is a file`, { url: this.url, path: dir });
        break;
      }
      missing.unshift(dir);
      if (posix.dirname(dir) === dir) break;
    }
    for (const dir of missing) {
      try {
        await this.run({ op: 'create directory', path: dir }, (c) => c.send(`MKD ${dir}`));
      } catch (e) {
        // someone (another connection, another fur) may have made it meanwhile
        if ((await this.stat(dir))?.isDirectory !== true) throw e;
      }
    }
  }

  /**
   * FTP has no exclusive create: STOR and APPE replace or extend, RNTO replaces on most servers,
   * and even MKD is not refused for an existing directory everywhere (ftp-srv's is recursive). A
   * listing of one server's directory is consistent, which is all claims need (exclusive.ts).
   */
  exclusive(path: string): ExclusiveRecord {
    // through a view that borrows connections first: a lease renewed behind hundreds of queued
    // uploads would expire (seen: 1,800 files at 300 fps to vsftpd)
    return new ClaimsRecord(new FtpsDestination(this.pool, this.root, this.features, this.target, this.opts, true), path);
  }

  async rename(from: string, to: string): Promise<void> {
    const src = this.resolve(from);
    const dst = this.resolve(to);
    try {
      await this.run({ op: `rename to ${dst}`, path: src }, (c) => c.rename(src, dst), false);
    } catch (e) {
      const f = e as FurError;
      if (f.tag === 'ftp-unsupported') {
        throw new FurError('rename-unsupported',
          `${this.url}: the server does not rename files (${String(remoteFields(f).code)} ${String(remoteFields(f).reply)}); fur publishes files by renaming them into place so no half-written file ever shows, and cannot work without it`,
          { url: this.url, path: src }, { cause: e });
      }
      if (f.tag === 'connection-lost') {
        // the rename may have happened before the connection dropped
        const [s, d] = [await this.stat(src).catch(() => undefined), await this.stat(dst).catch(() => undefined)];
        if (s === null && d && !d.isDirectory) return;
      }
      throw e;
    }
  }

  /**
   * Removes a file or an empty directory; a path that is already gone is not an error. DELE first:
   * what fur removes is nearly always a file (a temporary), and that takes one command.
   */
  async remove(path: string): Promise<void> {
    const abs = this.resolve(path);
    let refused: unknown;
    try {
      await this.run({ op: 'remove', path: abs }, (c) => c.send(`DELE ${abs}`));
      return;
    } catch (e) {
      if (!(e instanceof FurError) || e.tag === 'connection-lost') throw e;
      refused = e;
    }
    // refused: gone already, a directory, or a file the server will not delete
    const st = await this.stat(abs);
    if (st === null) return;
    if (!st.isDirectory) throw refused;
    try {
      await this.run({ op: 'remove', path: abs }, (c) => c.send(`RMD ${abs}`));
    } catch (e) {
      if ((await this.stat(abs)) !== null) throw e;
    }
  }

  async list(dir: string): Promise<string[]> {
    const abs = this.resolve(dir);
    const entries = await this.run({ op: 'list', path: abs }, (c) => c.list(abs));
    return entries.map((e) => posix.basename(e.name)).filter((n) => n !== '.' && n !== '..').sort();
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

async function isDirectory(c: Client, abs: string): Promise<boolean> {
  try {
    await c.send(`CWD ${abs}`);
    return true;
  } catch (e) {
    if (e instanceof FTPError && (e.code === 550 || e.code === 450 || e.code === 553)) return false;
    throw e;
  }
}

class RestartUpload extends Error {}

/** Join remote paths without resolving `..` (the server knows its own links and chroot). */
function join(base: string, path: string): string {
  const tidy = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p).replace(/\/{2,}/g, '/');
  if (path.startsWith('/')) return tidy(path);
  if (path === '' || path === '.') return tidy(base);
  return tidy(base.endsWith('/') ? `${base}${path}` : `${base}/${path}`);
}
