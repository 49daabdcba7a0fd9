/**
 * `fur verify`: compare what the destination holds with the local source files, frame by frame
 * (or byte by byte for the `files` method). Frames whose sources were deleted after upload are
 * counted as remote-only, not as errors.
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { H5File, type Dataset } from '../hdf5/index.js';
import { readFrames, type ReadOptions } from '../source/readers/index.js';
import { listCompleted } from '../source/watch.js';
import type { Destination } from '../transport/destination.js';
import { FurError, isFurError } from '../errors.js';
import { sha256, siblingPath } from './layout.js';
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

interface Located { data: Dataset; row: number; file: string }

async function index(file: H5File, path: string, dataset: string, into: Map<string, Located[]>): Promise<number> {
  const data = file.dataset(dataset);
  const names = await file.dataset(siblingPath(dataset, 'frame_name')).readVlen(0, data.shape[0]);
  const pages = new Uint32Array((await file.dataset(siblingPath(dataset, 'frame_page')).read(0, data.shape[0])).slice().buffer);
  names.forEach((n, row) => {
    const name = Buffer.from(n).toString('utf8');
    const list = into.get(name) ?? [];
    list[pages[row]] = { data, row, file: path };
    into.set(name, list);
  });
  return data.shape[0];
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
    report.remoteOnly = (await spec.dest.list(spec.destPath)).filter((n) => !localNames.has(n)).length;
    return report;
  }
  const where = new Map<string, Located[]>();
  const opened: H5File[] = [];
  let total = 0;
  const paths = spec.method === 'append'
    ? [spec.destPath]
    : (await spec.dest.list(spec.destPath)).filter((n) => n.endsWith('.h5')).map((n) => posix.join(spec.destPath, n));
  try {
    for (const p of paths) {
      const file = await H5File.open(await spec.dest.openRead(p), { readOnly: true });
      opened.push(file);
      total += await index(file, p, spec.dataset, where);
    }
    let matched = 0;
    for (const f of local) {
      const locs = where.get(f.name);
      let block;
      try {
        block = await readFrames(f.path, spec.read);
      } catch (e) {
        if (!isFurError(e)) throw e;
        report.unreadable.push({ file: f.name, message: e.message });
        continue;
      }
      if (!locs || locs.length < block.count) { report.missing.push(f.name); continue; }
      const frameBytes = block.dtype === 'bytes' ? block.data.length : block.data.length / block.count;
      for (let i = 0; i < block.count; i++) {
        const { data, row, file } = locs[i];
        const want = block.data.subarray(i * frameBytes, (i + 1) * frameBytes);
        const stored = await readRows(data, row, row + 1, file, report);
        const got = stored.items ? stored.items[0]! : stored.rows!;
        if (got.length === want.length && Buffer.compare(Buffer.from(got), Buffer.from(want)) === 0) report.equal++;
        else report.different.push({ file: f.name, frame: i });
        matched++;
      }
    }
    report.remoteOnly = total - matched;
  } finally {
    // opened read-only: closing must not write (commit finds nothing dirty)
    for (const f of opened) await f.close().catch(() => undefined);
  }
  return report;
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
  const paths = spec.method === 'append'
    ? [spec.destPath]
    : (await spec.dest.list(spec.destPath)).filter((n) => n.endsWith('.h5')).map((n) => posix.join(spec.destPath, n));
  for (const p of paths) {
    const file = await H5File.open(await spec.dest.openRead(p), { readOnly: true });
    try {
      const data = file.dataset(spec.dataset);
      const hashPath = siblingPath(spec.dataset, 'frame_sha256');
      if (!file.has(hashPath)) throw new FurError('no-hashes', `${p}: no ${hashPath} dataset; verify it against its sources instead (fur verify SRC DEST)`, { path: p });
      const names = await file.dataset(siblingPath(spec.dataset, 'frame_name')).readVlen(0, data.shape[0]);
      const pages = new Uint32Array((await file.dataset(siblingPath(spec.dataset, 'frame_page')).read(0, data.shape[0])).slice().buffer);
      const hashes = await file.dataset(hashPath).read(0, data.shape[0]);
      const step = Math.max(1, data.chunk?.[0] ?? 64);
      for (let start = 0; start < data.shape[0]; start += step) {
        const end = Math.min(data.shape[0], start + step);
        const { items: frames, rows: block } = await readRows(data, start, end, p, report);
        for (let row = start; row < end; row++) {
          const bytes = frames ? frames[row - start] : block!.subarray((row - start) * data.rowBytes, (row - start + 1) * data.rowBytes);
          const ok = Buffer.compare(Buffer.from(sha256(bytes)), Buffer.from(hashes.subarray(row * 32, row * 32 + 32))) === 0;
          if (ok) report.equal++;
          else report.different.push({ file: Buffer.from(names[row] ?? []).toString('utf8'), frame: pages[row] ?? 0 });
        }
      }
    } finally {
      await file.close().catch(() => undefined);
    }
  }
  return report;
}
