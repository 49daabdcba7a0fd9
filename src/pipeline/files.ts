/**
 * The `files` method: each source file copied as-is to the destination folder, under a temporary
 * name first, renamed into place once complete (and synced where the destination can).
 */
import { open, readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { FurError } from '../errors.js';
import type { Destination, RemoteFile } from '../transport/destination.js';
import type { CompletedFile } from '../source/watch.js';
import { TEMP_SUFFIX } from './batches.js';

/** Files larger than this are read and sent a piece at a time, not whole. */
const WHOLE = 8 << 20;
const PIECE = 4 << 20;
/** pieces of one large file read and not yet acknowledged */
const PIECES_AHEAD = 4;

export class FilesTarget {
  readonly committed = new Map<string, number>();
  /** names at the destination when the run started: only those can be there already */
  private present = new Set<string>();

  private constructor(private dest: Destination, private dir: string) {}

  static async open(dest: Destination, dir: string): Promise<FilesTarget> {
    const t = new FilesTarget(dest, dir);
    await dest.mkdirp(dir);
    for (const name of await dest.list(dir)) {
      // an interrupted upload is swept by the run (sweep.ts)
      if (!name.endsWith(TEMP_SUFFIX)) t.present.add(name);
    }
    return t;
  }

  /**
   * True when the destination already holds this file, byte for byte (a restarted run); an error
   * when it holds a different file of that name (a capture that reuses names), which must neither
   * replace it nor be deleted as if sent.
   */
  async has(file: CompletedFile): Promise<boolean | FurError> {
    // a name the destination did not list at the start is not there: no round trip per file
    if (!this.present.has(file.name)) return false;
    const path = posix.join(this.dir, file.name);
    const st = await this.dest.stat(path);
    if (st === null || st.isDirectory) return false;
    const local = await readFile(file.path);
    if (st.size === local.length) {
      const remote = await this.dest.openRead(path);
      try {
        if (Buffer.compare(Buffer.from(await remote.read(0, st.size)), local) === 0) return true;
      } finally {
        await remote.close();
      }
    }
    return new FurError('name-reused',
      `${file.path}: ${this.dest.url.replace(/\/$/, '')}/${path} already exists with other content; a capture that reuses file names needs a new destination`,
      { file: file.path });
  }

  async close(): Promise<void> {}

  async upload(file: CompletedFile, data?: Uint8Array): Promise<number> {
    const final = posix.join(this.dir, file.name);
    const temp = final + TEMP_SUFFIX;
    const remote = await this.dest.openWrite(temp, { truncate: true });
    let size: number;
    try {
      if (data === undefined && file.size > WHOLE) size = await this.stream(file.path, remote);
      else {
        const bytes = data ?? await readFile(file.path);
        size = bytes.length;
        // not awaited here: a failed write fails the sync or close that follows
        if (size) remote.write(0, bytes).catch(() => undefined);
      }
      const sync = this.dest.capabilities.fsync && remote.sync !== undefined;
      if (sync && this.dest.capabilities.ordered) {
        // write, fsync and close go out back to back: one round trip, each still after the last
        const synced = remote.sync!();
        synced.catch(() => undefined);
        await remote.close();
        await synced;
      } else {
        if (sync) await remote.sync!();
        else await remote.flush();
        await remote.close();
      }
    } catch (e) {
      await remote.close().catch(() => undefined);
      throw e;
    }
    await this.dest.rename(temp, final);
    return size;
  }

  /** Send a large file a piece at a time, with a few pieces in flight: memory stays bounded. */
  private async stream(path: string, remote: RemoteFile): Promise<number> {
    const fh = await open(path, 'r');
    try {
      const inFlight: Promise<void>[] = [];
      let offset = 0;
      for (;;) {
        if (inFlight.length >= PIECES_AHEAD) await inFlight.shift();
        const buf = Buffer.allocUnsafe(PIECE);
        const { bytesRead } = await fh.read(buf, 0, PIECE, offset);
        if (bytesRead === 0) break;
        inFlight.push(remote.write(offset, buf.subarray(0, bytesRead)));
        offset += bytesRead;
      }
      await Promise.all(inFlight);
      return offset;
    } finally {
      await fh.close();
    }
  }
}
