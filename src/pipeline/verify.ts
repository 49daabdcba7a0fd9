/**
 * `fur verify`: compare what the destination holds with the local source files, frame by frame
 * (or byte by byte for the `files` method). Frames whose sources were deleted after upload are
 * counted as remote-only, not as errors.
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { H5File, type Dataset } from '../hdf5/index.js';
import type { FrameBlock } from '../source/frame.js';
import { readFrames, type ReadOptions } from '../source/readers/index.js';
import { listCompleted, type CompletedFile } from '../source/watch.js';
import type { Destination } from '../transport/destination.js';
import { FurError, isFurError } from '../errors.js';
import { isLeaseName } from './lease.js';
import { framesPath, sha256, siblingPath } from './layout.js';
import type { Method } from './options.js';

export interface VerifyReport {
  /** frames (or files, for `files`) compared and equal */
  equal: number;
  /** frames that differ: file name and frame index within it */
  different: { file: string; frame: number }[];
  /** local files with no (or too few) frames at the destination */
  missing: string[];
  /** frames at the destination whose source is no longer local */
  remoteOnly: number;
  /** stored chunks whose Fletcher-32 fails (their frames are still compared, unchecked) */
  damaged: { file: string; dataset: string; rows: [number, number] }[];
  /** local files that could not be read as frames (an upload kept them too): not compared */
  unreadable: { file: string; message: string }[];
}

/**
 * Rows of the frames dataset, checksums checked; a chunk that fails is recorded as damaged and
 * read again unchecked, so the frame comparison can still say which frames changed.
 */
async function readRows(data: Dataset, start: number, end: number, file: string, report: VerifyReport): Promise<{ rows?: Uint8Array; items?: Uint8Array[] }> {
  const vlen = data.type.class === 'vlen-bytes';
  const read = (checksums: boolean) => (vlen ? data.readVlen(start, end, { checksums }).then((items) => ({ items })) : data.read(start, end, { checksums }).then((rows) => ({ rows })));
  try {
    return await read(true);
  } catch (e) {
    if (!isFurError(e, 'checksum-mismatch')) throw e;
    const c0 = data.chunk?.[0] ?? data.shape[0];
    for (let r = Math.floor(start / c0) * c0; r < end; r += c0) {
      if (!report.damaged.some((d) => d.file === file && d.rows[0] === r)) report.damaged.push({ file, dataset: data.path, rows: [r, Math.min(r + c0, data.shape[0])] });
    }
    return read(false);
  }
}

/** A stored file's frames dataset with the source name and page of each of its rows. */
interface Stored { path: string; data: Dataset; names: string[]; pages: Uint32Array }

async function open(file: H5File, path: string, datasetPath: string): Promise<Stored> {
  const dataset = framesPath(file, datasetPath);
  const data = file.dataset(dataset);
  const names = (await file.dataset(siblingPath(dataset, 'frame_name')).readVlen(0, data.shape[0])).map((n) => Buffer.from(n).toString('utf8'));
  const pages = new Uint32Array((await file.dataset(siblingPath(dataset, 'frame_page')).read(0, data.shape[0])).slice().buffer);
  return { path, data, names, pages };
}

/** The HDF5 files a method stored at the destination. */
async function storedPaths(spec: { dest: Destination; destPath: string; method: Method }): Promise<string[]> {
  return spec.method === 'append'
    ? [spec.destPath]
    : (await spec.dest.list(spec.destPath)).filter((n) => n.endsWith('.h5')).map((n) => posix.join(spec.destPath, n));
}

/** Source files decoded on demand; a few kept, since a file's frames sit in neighbouring rows. */
class Sources {
  private readonly cache = new Map<string, Promise<FrameBlock>>();
  /** source files that could not be read as frames, with the reason: their rows are not compared */
  readonly failed = new Map<string, string>();
  constructor(private readonly files: Map<string, CompletedFile>, private readonly read: ReadOptions) {}

  has(name: string): boolean { return this.files.has(name); }

  /** source `name` decoded, or undefined if it cannot be read as frames (an upload kept it too) */
  private async block(name: string): Promise<FrameBlock | undefined> {
    if (this.failed.has(name)) return undefined;
    let block = this.cache.get(name);
    if (!block) {
      block = readFrames(this.files.get(name)!.path, this.read);
      this.cache.set(name, block);
      if (this.cache.size > 8) this.cache.delete(this.cache.keys().next().value!);
    }
    try {
      return await block;
    } catch (e) {
      if (!isFurError(e)) throw e;
      this.failed.set(name, e.message);
      return undefined;
    }
  }

  /** frames in source `name`, or undefined if it cannot be read */
  async count(name: string): Promise<number | undefined> {
    return (await this.block(name))?.count;
  }

  /** frame `page` of source `name` as stored (a `bytes` file is its one frame); undefined past its end or if unreadable */
  async frame(name: string, page: number): Promise<Uint8Array | undefined> {
    const b = await this.block(name);
    if (!b || page >= b.count) return undefined;
    const size = b.dtype === 'bytes' ? b.data.length : b.data.length / b.count;
    return b.data.subarray(page * size, (page + 1) * size);
  }
}

export async function verify(spec: {
  sourceDir: string; pattern: string; dest: Destination; destPath: string; method: Method; dataset: string; read: ReadOptions;
  /** names in the folder that are not frames: the stop file, companion markers */
  notFrames?: { stopFile?: string; markerSuffix?: string };
}): Promise<VerifyReport> {
  const report: VerifyReport = { equal: 0, different: [], missing: [], remoteOnly: 0, damaged: [], unreadable: [] };
  const local = await listCompleted(spec.sourceDir, spec.pattern, spec.notFrames);
  if (spec.method === 'files') {
    for (const f of local) {
      const path = posix.join(spec.destPath, f.name);
      const st = await spec.dest.stat(path);
      if (!st) { report.missing.push(f.name); continue; }
      const remote = await spec.dest.openRead(path);
      try {
        const got = await remote.read(0, st.size);
        const want = await readFile(f.path);
        if (Buffer.compare(Buffer.from(got), want) === 0) report.equal++;
        else report.different.push({ file: f.name, frame: 0 });
      } finally { await remote.close(); }
    }
    const localNames = new Set(local.map((f) => f.name));
    report.remoteOnly = (await spec.dest.list(spec.destPath)).filter((n) => !localNames.has(n) && !isLeaseName(n)).length;
    return report;
  }
  const sources = new Sources(new Map(local.map((f) => [f.name, f])), spec.read);
  // every stored row holding a source frame is compared with it: a frame is equal only if every
  // row that claims to be it holds its bytes (two runs on one destination could leave two)
  const verdict = new Map<string, Map<number, boolean>>();
  for (const p of await storedPaths(spec)) {
    const file = await H5File.open(await spec.dest.openRead(p), { readOnly: true });
    try {
      const s = await open(file, p, spec.dataset);
      // a chunk's rows at a time: each stored chunk is read (and checked) once, not once per frame
      await eachBlock(s, report, async (row, got) => {
        const name = s.names[row]!;
        const page = s.pages[row]!;
        const want = sources.has(name) ? await sources.frame(name, page) : undefined;
        if (want === undefined) { report.remoteOnly++; return; }
        const pages = verdict.get(name) ?? new Map<number, boolean>();
        verdict.set(name, pages);
        const ok = got.length === want.length && Buffer.compare(Buffer.from(got), Buffer.from(want)) === 0;
        pages.set(page, (pages.get(page) ?? true) && ok);
      });
    } finally {
      // opened read-only: closing must not write (commit finds nothing dirty)
      await file.close().catch(() => undefined);
    }
  }
  for (const f of local) {
    const count = await sources.count(f.name);
    if (count === undefined) { report.unreadable.push({ file: f.name, message: sources.failed.get(f.name)! }); continue; }
    const pages = verdict.get(f.name);
    for (let page = 0; page < count; page++) {
      const ok = pages?.get(page);
      if (ok === true) report.equal++;
      else if (ok === false) report.different.push({ file: f.name, frame: page });
    }
    if (!pages || pages.size < count) report.missing.push(f.name);
  }
  return report;
}

/** Every row of a stored frames dataset with its bytes, read a chunk's rows at a time. */
async function eachBlock(s: Stored, report: VerifyReport, visit: (row: number, bytes: Uint8Array) => Promise<void>): Promise<void> {
  const { data, path } = s;
  const step = Math.max(1, data.chunk?.[0] ?? 64);
  for (let start = 0; start < data.shape[0]; start += step) {
    const end = Math.min(data.shape[0], start + step);
    const { items, rows } = await readRows(data, start, end, path, report);
    for (let row = start; row < end; row++) {
      await visit(row, items ? items[row - start]! : rows!.subarray((row - start) * data.rowBytes, (row - start + 1) * data.rowBytes));
    }
  }
}

/**
 * Verify a destination against itself: every frame re-read (chunk checksums checked where the
 * file has them) and hashed, compared with the SHA-256 recorded when it was packaged.
 */
export async function verifySelf(spec: { dest: Destination; destPath: string; method: Method; dataset: string }): Promise<VerifyReport> {
  const report: VerifyReport = { equal: 0, different: [], missing: [], remoteOnly: 0, damaged: [], unreadable: [] };
  if (spec.method === 'files') {
    throw new FurError('needs-sources', 'the files method stores files as they are, with no frame hashes: give the source folder too (fur verify SRC DEST --method files)', {});
  }
  for (const p of await storedPaths(spec)) {
    const file = await H5File.open(await spec.dest.openRead(p), { readOnly: true });
    try {
      const hashPath = siblingPath(framesPath(file, spec.dataset), 'frame_sha256');
      if (!file.has(hashPath)) throw new FurError('no-hashes', `${p}: no ${hashPath} dataset; verify it against its sources instead (fur verify SRC DEST)`, { path: p });
      const s = await open(file, p, spec.dataset);
      const hashes = await file.dataset(hashPath).read(0, s.data.shape[0]);
      await eachBlock(s, report, async (row, bytes) => {
        const ok = Buffer.compare(Buffer.from(sha256(bytes)), Buffer.from(hashes.subarray(row * 32, row * 32 + 32))) === 0;
        if (ok) report.equal++;
        else report.different.push({ file: s.names[row] ?? '', frame: s.pages[row] ?? 0 });
      });
    } finally {
      await file.close().catch(() => undefined);
    }
  }
  return report;
}
