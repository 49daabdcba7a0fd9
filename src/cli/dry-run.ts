/**
 * `--dry-run`: what a run would upload, where and how, and whether the destination would take
 * it — without uploading. The source is listed and its first file read (for the layout); the
 * destination is reached and its folder (or the nearest existing one above it) is checked by
 * creating and removing an empty probe file, so its listing is the same afterwards. Exit 0 when
 * the destination is writable, 1 when it is not (or cannot be reached).
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { FurError, isFurError } from '../errors.js';
import { appendPlan } from '../pipeline/append.js';
import { batchFileName } from '../pipeline/batches.js';
import { frameChunks, framesPath } from '../pipeline/layout.js';
import { FRAMES } from '../pipeline/nexus.js';
import { filtersOf, type PipelineOptions } from '../pipeline/options.js';
import { splitTarget } from '../pipeline/run.js';
import { readFrames } from '../source/readers/index.js';
import { H5File } from '../hdf5/index.js';
import { listCompleted, type CompletedFile } from '../source/watch.js';
import type { Destination } from '../transport/destination.js';
import { openDestination } from '../transport/open.js';
import { parseDestinationUrl } from '../transport/url.js';
import { checkMethod, openOptions, type ConnectionFlags } from './connect.js';
import { printable } from './render.js';
import { mb, plural } from './status-line.js';

export interface DryRunSpec {
  src: string;
  destUrl: string;
  pattern: string;
  options: PipelineOptions;
  flags: ConnectionFlags & { stopFile?: string; marker?: string };
  watch: boolean;
  json: boolean;
}

interface PlannedFile { name: string; size: number; frames: number; batch: number; to: string }

/** Folders above a path, nearest first, up to the root. */
function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let p = posix.dirname(path); ; p = posix.dirname(p)) {
    out.push(p);
    if (p === posix.dirname(p)) return out;
  }
}

/**
 * Open the destination without creating anything: its folder, or the nearest existing folder
 * above it (where fur would create the rest). Returns which folders would be created.
 */
async function reach(spec: DryRunSpec): Promise<{ dest: Destination; missing: string[]; inside: string; where: string }> {
  const target = parseDestinationUrl(spec.destUrl);
  const opts = { ...openOptions(spec.flags), createRoot: false };
  if (target.scheme === 's3') {
    const { root, inside } = splitTarget(spec.options.method, `/${target.prefix}`);
    const prefix = root.replace(/^\/+/, '');
    const display = `s3://${target.bucket}/${prefix}`;
    return { dest: await openDestination({ ...target, prefix, display }, opts), missing: [], inside, where: display };
  }
  const { root, inside } = splitTarget(spec.options.method, target.path);
  const base = target.display.endsWith(target.path) ? target.display.slice(0, target.display.length - target.path.length) : target.display;
  const missing: string[] = [];
  for (const dir of [root, ...ancestors(root)]) {
    try {
      const dest = await openDestination({ ...target, path: dir, display: base + dir } as typeof target, opts);
      return { dest, missing, inside, where: base + dir };
    } catch (e) {
      if (!isFurError(e, 'not-found') || dir === posix.dirname(dir)) throw e;
      missing.unshift(dir);
    }
  }
  throw new FurError('not-found', `${target.display}: no folder of it exists`, {});
}

/** Group files into batches of whole files, as the run would (estimated from the first file's frames). */
function plan(files: CompletedFile[], framesPerByte: number, perBatch: number, o: PipelineOptions, inside: string): PlannedFile[] {
  const out: PlannedFile[] = [];
  let batch = 0, inBatch = 0, row = 0;
  let batchFile = '';
  for (const f of files) {
    const frames = o.method === 'files' ? 1 : Math.max(1, Math.round(f.size * framesPerByte));
    if (inBatch === 0) batchFile = batchFileName(f.name);
    const to = o.method === 'append' ? `${inside} ${frames === 1 ? `row ${row}` : `rows ${row}-${row + frames - 1}`}`
      : o.method === 'batches' ? posix.join(inside, batchFile) : posix.join(inside, f.name);
    out.push({ name: f.name, size: f.size, frames, batch, to });
    row += frames;
    inBatch += frames;
    if (o.method === 'files' || inBatch >= perBatch) { batch++; inBatch = 0; }
  }
  return out;
}

/**
 * The frames dataset's chunks and the most frames a commit holds, asked of what the run would
 * use: append's own plan to a file (large frames a chunk each, commits of at most 64 MiB, a
 * continued file's chunks), the options' chunks and --batch elsewhere (S3 append, batches).
 */
function storePlan(o: PipelineOptions, s3: boolean, block: Awaited<ReturnType<typeof readFrames>>, chunkFrames?: number): { chunks: number[]; commitFrames: number } {
  if (o.method === 'append' && !s3) return appendPlan(block, o, chunkFrames);
  return { chunks: frameChunks({ dtype: block.dtype, shape: block.shape, encoding: block.encoding }, o), commitFrames: o.batchFrames };
}

/** Frames to a chunk in the file a run would continue (undefined: none there yet, or not a fur file). */
async function continuedChunk(dest: Destination, path: string, dataset: string): Promise<number | undefined> {
  try {
    const file = await H5File.open(await dest.openRead(path), { readOnly: true });
    try {
      return file.dataset(framesPath(file, dataset)).chunk?.[0];
    } finally { await file.close(); }
  } catch {
    return undefined; // the run says what is wrong with it
  }
}

export async function dryRun(spec: DryRunSpec): Promise<number> {
  const o = spec.options;
  checkMethod(spec.destUrl, o.method);
  const lines: string[] = [];
  const say = (l: string) => lines.push(l);
  const files = await listCompleted(spec.src, spec.pattern, { stopFile: spec.flags.stopFile, markerSuffix: spec.flags.marker });
  const total = files.reduce((n, f) => n + f.size, 0);
  const s3 = parseDestinationUrl(spec.destUrl).scheme === 's3';
  say(`fur dry run: ${spec.watch ? 'watch' : 'upload'} ${printable(spec.src)} → ${printable(spec.destUrl)} (nothing is uploaded)`);
  // the layout, from the first file (as the run takes it from the first file too)
  const block = files.length > 0 && o.method !== 'files' ? await readFrames(files[0]!.path, o.read) : undefined;

  let code = 0;
  let dest: Destination | undefined;
  let writable = false;
  let reason = '';
  let inside = '';
  let where = '';
  let missing: string[] = [];
  let existing: string | undefined;
  let chunkFrames: number | undefined;
  try {
    ({ dest, missing, inside, where } = await reach(spec));
    // made and removed as the run makes and removes its lease: the same check, and on a
    // versioned S3 bucket the record's versions go with it (a plain PUT + DELETE leaves both)
    const probe = dest.exclusive(`.fur-dry-run-${randomBytes(6).toString('hex')}`);
    try {
      await probe.create(new TextEncoder().encode('fur --dry-run: is this destination writable?\n'));
      await probe.remove();
      writable = true;
    } catch (e) {
      await probe.remove().catch(() => undefined);
      reason = (e as Error).message;
    }
    if (missing.length === 0 && o.method === 'append') {
      const st = await dest.stat(inside);
      existing = `${inside}: ${st ? `exists (${mb(st.size)}); the run continues it after its last commit` : 'does not exist yet; the run creates it'}`;
      // a continued file keeps its chunks, and its commits end on them
      if (st && st.size > 0 && !s3) chunkFrames = await continuedChunk(dest, inside, o.dataset);
    }
  } catch (e) {
    reason = (e as Error).message;
  } finally {
    await dest?.close().catch(() => undefined);
  }

  let perBatch = o.batchFrames;
  let framesPerByte = 0;
  let layout: Record<string, unknown> | undefined;
  if (block) {
    framesPerByte = block.count / Math.max(1, files[0]!.size);
    const planned = storePlan(o, s3, block, chunkFrames);
    perBatch = planned.commitFrames;
    const chunks = chunkFrames === undefined ? planned.chunks : [chunkFrames, ...planned.chunks.slice(1)];
    const filters = filtersOf(o).map((f) => f.id === 'deflate' ? `gzip:${f.level}` : f.id);
    const type = block.dtype === 'bytes' ? 'variable-length bytes' : block.dtype;
    // a new file's layout (a continued file keeps its own): NeXus keeps the frames at FRAMES, --dataset links to them
    const framesAt = o.layout === 'nexus' ? FRAMES : o.dataset;
    const link = framesAt === o.dataset ? '' : `, ${o.dataset} links to them`;
    layout = { layout: o.layout, dataset: framesAt, ...(link ? { link: o.dataset } : {}), dtype: type, frameShape: block.shape, chunk: chunks, filters };
    say(`method ${o.method}: ${o.method === 'append' ? 'one HDF5 file, appended to and committed batch by batch' : 'one HDF5 file per batch'}; ` +
      `${o.layout} layout: ${framesAt} (N${block.shape.map((d) => `, ${d}`).join('')}) ${type}, chunks (${chunks.join(', ')}), filters ${filters.length ? filters.join(', ') : 'none'}${link}`);
  } else say(`method ${o.method}: ${o.method === 'files' ? 'each file as it is, under its own name' : 'nothing to read yet'}`);
  const planned = plan(files, framesPerByte, perBatch, o, '');
  const batches = planned.length ? planned[planned.length - 1]!.batch + 1 : 0;
  const frames = planned.reduce((n, p) => n + p.frames, 0);
  say(`${plural(files.length, 'file')}${spec.watch ? ' present now (more as the instrument writes them)' : ''}, ${mb(total)}` +
    (o.method === 'files' ? '' : `, ~${plural(frames, 'frame')} in ${plural(batches, 'batch', 'batches')} of up to ${plural(perBatch, 'frame')}`) +
    (o.deleteSource ? '; each local file deleted once its batch is committed' : '; local files kept (no --delete-source)'));
  if (existing) say(existing);
  // where each goes, under the last name of the URL given (the file, or the folder)
  const shown = posix.basename(parseDestinationUrl(spec.destUrl).display.replace(/\/+$/, ''));
  for (const p of planned) say(`  ${printable(p.name)}  ${mb(p.size)}  → ${printable(o.method === 'append' ? `${shown}${p.to}` : `${shown}/${p.to}`)}${o.method === 'files' ? '' : `  (batch ${p.batch})`}`);
  if (missing.length) say(`would create ${missing.map(printable).join(', ')}`);
  if (writable) say(`destination ${printable(where)}: reachable and writable (an empty probe file was created and removed); nothing written`);
  else {
    say(`destination ${printable(where || spec.destUrl)}: ${where ? 'not writable' : 'not reachable'}: ${printable(reason)}`);
    code = 1;
  }
  if (spec.json) {
    process.stdout.write(JSON.stringify({ type: 'dry-run', writable, reason: writable ? undefined : reason, method: o.method, layout, batchFrames: perBatch, batches, files: planned, create: missing }) + '\n');
  } else process.stdout.write(lines.join('\n') + '\n');
  return code;
}
