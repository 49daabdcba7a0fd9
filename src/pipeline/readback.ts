/**
 * Reading committed frames back from the destination. Where a commit cannot be made durable (an
 * SFTP server without fsync@openssh.com, FTP), a source is deleted only once the frames stored
 * from it read back from the server equal the SHA-256 fur recorded when it packaged them (or, for
 * the `files` method, the stored file equals the source file).
 *
 * Frames are read a chunk at a time, each chunk once, with a few chunks in flight; a batch's
 * commit reads back only that batch's rows, from a fresh read-only open of the file, so what is
 * checked is what the server holds for a reader, not what fur keeps in memory.
 */
import { open as openLocal } from 'node:fs/promises';
import { posix } from 'node:path';
import { isFurError } from '../errors.js';
import { H5File, type Dataset } from '../hdf5/index.js';
import type { Destination } from '../transport/destination.js';
import { framesPath, sha256, siblingPath } from './layout.js';
import type { Method } from './options.js';

/** a batch's frames in the file a commit stored them in: rows [start, end) of the frames dataset */
export interface StoredRows { path: string; rows: [number, number] }

/** one row read back: its source file, its frame within that file, and whether it matches its recorded hash */
interface RowCheck { name: string; page: number; ok: boolean }

/** chunks read at once: a long link stays busy without holding many chunks in memory */
const CHUNKS_IN_FLIGHT = 4;
/**
 * Opens of a file being appended to: one that spans the next batch's commit can read the file's
 * size and its superblock from either side of it and be refused once (docs/hdf5-layout.md).
 */
const OPEN_TRIES = 3;
/** pieces of a `files` comparison held at once */
const PIECE = 4 << 20;

/**
 * The source files whose frames read back intact in `rows`: pages 0…n-1 in order, and every
 * row's stored frame hashing to its recorded SHA-256.
 */
export function intactSources(rows: RowCheck[]): Set<string> {
  const seen = new Map<string, { pages: number; ok: boolean }>();
  for (const r of rows) {
    const s = seen.get(r.name) ?? { pages: 0, ok: true };
    s.ok &&= r.ok && r.page === s.pages;
    s.pages++;
    seen.set(r.name, s);
  }
  return new Set([...seen].filter(([, s]) => s.ok).map(([n]) => n));
}

/** What a file's per-frame datasets say of some rows: source names, pages, SHA-256 (32 bytes a row). */
interface Recorded { names: string[]; pages: Uint32Array; hashes: Uint8Array }

/** The file does not read as one of fur's (or not now: see OPEN_TRIES). */
export function unreadable(e: unknown): boolean {
  return isFurError(e, 'hdf5-format') || isFurError(e, 'hdf5-usage') || e instanceof RangeError;
}

/** An HDF5 file of fur's at the destination, opened read-only for reading frames back. */
class StoredFile {
  /** rows read back so far, and whether each matched its recorded hash */
  private checked = new Map<number, boolean>();

  private constructor(private file: H5File, private data: Dataset, private dataset: string) {}

  static async open(dest: Destination, path: string, dataset: string): Promise<StoredFile> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await StoredFile.openOnce(dest, path, dataset);
      } catch (e) {
        if (attempt >= OPEN_TRIES || !unreadable(e)) throw e;
      }
    }
  }

  private static async openOnce(dest: Destination, path: string, dataset: string): Promise<StoredFile> {
    const remote = await dest.openRead(path);
    let file: H5File | undefined;
    try {
      file = await H5File.open(remote, { readOnly: true });
      // the frames' own path (/entry/data/data in a NeXus file): the per-frame datasets are beside it
      const frames = framesPath(file, dataset);
      return new StoredFile(file, file.dataset(frames), frames);
    } catch (e) {
      await (file ? file.close() : remote.close()).catch(() => undefined);
      throw e;
    }
  }

  get rows(): number { return this.data.shape[0]; }

  /** rows [start, end): each one's source file name, its frame within that file, and its recorded SHA-256 */
  async recorded(start: number, end: number): Promise<Recorded> {
    end = Math.min(end, this.rows);
    if (end <= start) return { names: [], pages: new Uint32Array(0), hashes: new Uint8Array(0) };
    const [names, pages, hashes] = await Promise.all([
      this.file.dataset(siblingPath(this.dataset, 'frame_name')).readVlen(start, end),
      this.file.dataset(siblingPath(this.dataset, 'frame_page')).read(start, end),
      this.file.dataset(siblingPath(this.dataset, 'frame_sha256')).read(start, end),
    ]);
    return { names: names.map((n) => Buffer.from(n).toString('utf8')), pages: new Uint32Array(pages.slice().buffer), hashes };
  }

  /**
   * Rows read back, each against `hashes` (32 bytes per row from row `from`): every chunk holding
   * one of them is read once, whole, with a few chunks in flight; rows read before are not read again.
   */
  async check(rows: number[], hashes: Uint8Array, from: number): Promise<boolean[]> {
    const step = Math.max(1, this.data.chunk?.[0] ?? this.rows);
    const chunks = [...new Set(rows.filter((r) => !this.checked.has(r)).map((r) => Math.floor(r / step)))].sort((a, b) => a - b);
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const c = chunks[next++]!;
        const lo = Math.max(from, c * step);
        const hi = Math.min(this.rows, from + hashes.length / 32, (c + 1) * step);
        const frames = await this.frames(lo, hi);
        frames.forEach((f, i) => {
          const at = (lo + i - from) * 32;
          this.checked.set(lo + i, Buffer.compare(Buffer.from(sha256(f)), Buffer.from(hashes.subarray(at, at + 32))) === 0);
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, chunks.length) }, worker));
    return rows.map((r) => this.checked.get(r) ?? false);
  }

  /**
   * Frames of rows [start, end), within one chunk row: a chunk whose Fletcher-32 fails is read
   * again unchecked, so the hash comparison says which of its frames changed.
   */
  private async frames(start: number, end: number): Promise<Uint8Array[]> {
    const vlen = this.data.type.class === 'vlen-bytes';
    const read = async (checksums: boolean): Promise<Uint8Array[]> => {
      if (vlen) return this.data.readVlen(start, end, { checksums });
      const block = await this.data.read(start, end, { checksums });
      return Array.from({ length: end - start }, (_, i) => block.subarray(i * this.data.rowBytes, (i + 1) * this.data.rowBytes));
    };
    try {
      return await read(true);
    } catch (e) {
      if (!isFurError(e, 'checksum-mismatch')) throw e;
      return read(false);
    }
  }

  close(): Promise<void> { return this.file.close(); }
}

/** Rows of one file read back: what `check` found for each, as intactSources takes them. */
async function checkRows(file: StoredFile, rows: number[], recorded: Recorded, from: number): Promise<RowCheck[]> {
  const ok = await file.check(rows, recorded.hashes, from);
  return rows.map((r, i) => ({ name: recorded.names[r - from]!, page: recorded.pages[r - from]!, ok: ok[i]! }));
}

/** The sources whose frames rows [start, end) of `stored.path` hold intact, read back now from a fresh open. */
export async function intactInBatch(dest: Destination, stored: StoredRows, dataset: string): Promise<Set<string>> {
  const file = await StoredFile.open(dest, stored.path, dataset);
  try {
    const [start, end] = [stored.rows[0], Math.min(stored.rows[1], file.rows)];
    const recorded = await file.recorded(start, end);
    const rows = Array.from({ length: end - start }, (_, i) => start + i);
    return intactSources(await checkRows(file, rows, recorded, start));
  } finally {
    await file.close().catch(() => undefined);
  }
}

/**
 * Frames earlier runs committed, by source name (a restarted run deleting their sources): the
 * destination's files are opened and indexed once, when first asked, and stay open until close;
 * what they held then does not change.
 */
export class CommittedFrames {
  private opened?: Promise<Map<string, { file: StoredFile; recorded: Recorded }>>;
  private index = new Map<string, { path: string; rows: number[] }>();

  constructor(private dest: Destination, private method: Exclude<Method, 'files'>, private destPath: string, private dataset: string) {}

  /** the names of `names` whose frames read back intact */
  async intact(names: string[]): Promise<Set<string>> {
    this.opened ??= this.open();
    const files = await this.opened;
    const byPath = new Map<string, number[]>();
    for (const n of names) {
      const at = this.index.get(n);
      if (at) byPath.set(at.path, [...(byPath.get(at.path) ?? []), ...at.rows]);
    }
    const rows: RowCheck[] = [];
    for (const [path, list] of byPath) {
      const { file, recorded } = files.get(path)!;
      rows.push(...await checkRows(file, list, recorded, 0));
    }
    const intact = intactSources(rows);
    return new Set(names.filter((n) => intact.has(n)));
  }

  private async open(): Promise<Map<string, { file: StoredFile; recorded: Recorded }>> {
    const paths = this.method === 'append'
      ? [this.destPath]
      : (await this.dest.list(this.destPath)).filter((n) => n.endsWith('.h5')).map((n) => posix.join(this.destPath, n));
    const files = new Map<string, { file: StoredFile; recorded: Recorded }>();
    for (const path of paths) {
      let file: StoredFile;
      try {
        file = await StoredFile.open(this.dest, path, this.dataset);
      } catch (e) {
        // not one of fur's files (or not laid out with this dataset): it holds none of these frames
        if (unreadable(e)) continue;
        throw e;
      }
      const recorded = await file.recorded(0, file.rows);
      files.set(path, { file, recorded });
      recorded.names.forEach((n, row) => {
        const at = this.index.get(n) ?? { path, rows: [] };
        if (at.path === path) at.rows.push(row);
        this.index.set(n, at);
      });
    }
    return files;
  }

  async close(): Promise<void> {
    const files = await this.opened?.catch(() => undefined);
    for (const { file } of files?.values() ?? []) await file.close().catch(() => undefined);
  }
}

/** True when the file at `remotePath` holds exactly the bytes of the local file, compared a piece at a time. */
export async function sameFile(dest: Destination, remotePath: string, localPath: string): Promise<boolean> {
  const st = await dest.stat(remotePath);
  const local = await openLocal(localPath, 'r');
  try {
    const size = (await local.stat()).size;
    if (st === null || st.isDirectory || st.size !== size) return false;
    const remote = await dest.openRead(remotePath);
    try {
      const buf = Buffer.allocUnsafe(Math.min(PIECE, Math.max(1, size)));
      for (let offset = 0; offset < size; offset += PIECE) {
        const length = Math.min(PIECE, size - offset);
        const [piece, { bytesRead }] = await Promise.all([remote.read(offset, length), local.read(buf, 0, length, offset)]);
        if (bytesRead !== length || Buffer.compare(Buffer.from(piece.buffer, piece.byteOffset, piece.length), buf.subarray(0, length)) !== 0) return false;
      }
      return true;
    } finally {
      await remote.close();
    }
  } finally {
    await local.close();
  }
}
