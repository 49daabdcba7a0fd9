/**
 * How frames are laid out in the HDF5 files fur writes (the `append` file and each `batches`
 * file): the frames dataset (N, …frame shape) in the frames' own dtype — or variable-length bytes
 * for opaque files — and per-frame datasets beside it naming where each frame came from.
 */
import { createHash } from 'node:crypto';
import { FurError } from '../errors.js';
import { defaultChunks, dtypeName, type Dataset, type DtypeSpec, type H5File } from '../hdf5/index.js';
import { itemsize, type Dtype, type FrameBlock, type FrameEncoding } from '../source/frame.js';
import { filtersOf, type PipelineOptions } from './options.js';

export interface FrameLayout {
  dtype: Dtype;
  shape: number[];
  /** frames that arrive as filtered chunks, one frame each (see FrameBlock.encoding) */
  encoding?: FrameEncoding;
}

export interface FrameDatasets {
  data: Dataset;
  /** source file name of each frame */
  name: Dataset;
  /** frame index within its source file (multi-page TIFF, stacked .npy) */
  page: Dataset;
  /** source file modification time, seconds since 1970 */
  mtime: Dataset;
  /**
   * SHA-256 of each frame's bytes as stored, so a file can be verified without its sources (of
   * the chunk as received, for frames that arrive filtered: their bytes are never decoded)
   */
  sha256: Dataset;
  /** the values given with each frame, as JSON text (frames pushed by a program or a stream) */
  attrs?: Dataset;
}

export const PER_FRAME = ['frame_name', 'frame_page', 'frame_mtime', 'frame_sha256'] as const;

const MAX_CHUNK = 8 << 20;
const MIN_GOOD_CHUNK = 1 << 20;

/**
 * How fur wrote a file ('append' or 'batches', its root attribute fur_method), or undefined for a
 * file fur did not write — which fur never appends to and never takes as a record of what it sent.
 */
export async function furMethod(file: H5File): Promise<string | undefined> {
  const attr = file.attributes('/').find((a) => a.name === 'fur_method');
  const value = attr ? await file.readAttribute(attr) : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** sibling path of the frames dataset: /entry/data + frame_name → /entry/frame_name */
export function siblingPath(dataset: string, name: string): string {
  const i = dataset.lastIndexOf('/');
  return `${dataset.slice(0, i)}/${name}`;
}

/**
 * Chunk frames: whole frames, 1-8 MiB, preferring a divisor of the batch size so each commit
 * ends on a chunk boundary (no partial chunk to rewrite).
 */
export function chunkFramesFor(layout: FrameLayout, batchFrames: number): number[] {
  if (layout.dtype === 'bytes') return [Math.min(1024, Math.max(16, batchFrames))];
  const frameBytes = layout.shape.reduce((a, b) => a * b, 1) * itemsize(layout.dtype);
  const auto = defaultChunks(layout.shape, itemsize(layout.dtype));
  if (auto[0] === 1 && frameBytes > MAX_CHUNK) return auto; // frame larger than a chunk: split it
  let best = 0;
  for (let d = 1; d <= batchFrames; d++) if (batchFrames % d === 0 && d * frameBytes <= MAX_CHUNK) best = d;
  if (best && best * frameBytes >= Math.min(MIN_GOOD_CHUNK, batchFrames * frameBytes)) return [best, ...layout.shape];
  return auto;
}

/** The frames dataset's chunk shape: --chunk-frames if given, else chunkFramesFor. */
export function frameChunks(layout: FrameLayout, o: PipelineOptions): number[] {
  // a filtered frame is its own chunk: it is stored as it came
  if (layout.encoding) return [1, ...layout.shape];
  const auto = chunkFramesFor(layout, o.batchFrames);
  return o.chunkFrames !== undefined && layout.dtype !== 'bytes' ? [o.chunkFrames, ...auto.slice(1)] : auto;
}

export function createFrameDatasets(file: H5File, layout: FrameLayout, o: PipelineOptions): FrameDatasets {
  const dtype: DtypeSpec = layout.dtype === 'bytes' ? 'vlen-bytes' : layout.dtype;
  const chunks = frameChunks(layout, o);
  const frameShape = layout.dtype === 'bytes' ? [] : layout.shape;
  const filters = layout.encoding ? [{ id: layout.encoding }] : filtersOf(o);
  const data = file.createDataset(o.dataset, {
    dtype, shape: [0, ...frameShape], maxshape: [null, ...frameShape], chunks, filters,
  });
  const perFrame = (name: string, type: DtypeSpec) =>
    file.createDataset(siblingPath(o.dataset, name), { dtype: type, shape: [0], maxshape: [null], chunks: [1024] });
  const sha256 = file.createDataset(siblingPath(o.dataset, 'frame_sha256'), { dtype: 'uint8', shape: [0, 32], maxshape: [null, 32], chunks: [1024, 32] });
  const ds: FrameDatasets = { data, name: perFrame('frame_name', 'vlen-str'), page: perFrame('frame_page', 'uint32'), mtime: perFrame('frame_mtime', 'float64'), sha256 };
  if (o.frameAttrs) ds.attrs = perFrame('frame_attrs', 'vlen-str');
  file.setAttr(o.dataset, 'fur_layout', layout.dtype === 'bytes' ? 'bytes' : 'frames');
  return ds;
}

/** The frame datasets of an existing file, checked against the frames about to be added. */
export function openFrameDatasets(file: H5File, layout: FrameLayout, o: PipelineOptions, where: string): FrameDatasets {
  const need = [o.dataset, ...PER_FRAME.map((n) => siblingPath(o.dataset, n))];
  for (const p of need) {
    if (!file.has(p) || file.isGroup(p)) {
      throw new FurError('not-a-fur-file', `${where}: has no dataset ${p}; it was not written by fur with --dataset ${o.dataset}; choose another destination file`, { where, path: p });
    }
  }
  const data = file.dataset(o.dataset);
  const wantBytes = layout.dtype === 'bytes';
  const shapeOk = wantBytes ? data.frameShape.length === 0 : data.frameShape.join('x') === layout.shape.join('x');
  const typeOk = wantBytes ? data.type.class === 'vlen-bytes' : dtypeName(data.type) === layout.dtype;
  const stored = data.filters.some((f) => f.id === 'bitshuffle-lz4') ? 'bitshuffle-lz4' : undefined;
  if (stored !== layout.encoding) {
    throw new FurError('layout-mismatch',
      `${where}: ${o.dataset} holds frames ${stored ? `stored ${stored}` : 'not pre-filtered'}, the frames to add are ${layout.encoding ?? 'not pre-filtered'}; append to a new file`, { where });
  }
  if (!shapeOk || !typeOk) {
    throw new FurError('layout-mismatch',
      `${where}: ${o.dataset} holds frames of ${data.frameShape.join('x') || 'bytes'} ${dtypeName(data.type)}, the source has ${layout.shape.join('x') || 'bytes'} ${layout.dtype}; append to a new file`,
      { where });
  }
  return {
    data,
    name: file.dataset(need[1]),
    page: file.dataset(need[2]),
    mtime: file.dataset(need[3]),
    sha256: file.dataset(need[4]),
    attrs: file.has(siblingPath(o.dataset, 'frame_attrs')) ? file.dataset(siblingPath(o.dataset, 'frame_attrs')) : undefined,
  };
}

/**
 * Add a batch of source files' frames to the datasets (not yet committed). Per-frame values go
 * in one append per dataset, so a batch costs one heap collection for its names, not one per file.
 * Blocks are taken as they come (an array is emptied as it is taken), each hashed and let go of
 * once stored: however long the batch, it holds no more than the block in hand.
 */
export async function appendBlocks(ds: FrameDatasets, blocks: FrameBlock[] | AsyncIterable<FrameBlock>, pace?: () => Promise<void>): Promise<number> {
  let bytes = 0;
  const names: string[] = [];
  const pages: number[] = [];
  const mtimes: number[] = [];
  const hashes: Uint8Array[] = [];
  const attrs: string[] = [];
  // a block is hashed while its frames go out, a slice at a time (see hashBlock)
  let hashing: Promise<void> = Promise.resolve();
  for await (const block of Array.isArray(blocks) ? drain(blocks) : blocks) {
    const k = hashes.length;
    hashes.push(new Uint8Array(0));
    hashing = hashing.then(async () => { hashes[k] = await hashBlock(block); });
    if (block.attrs && !ds.attrs) {
      throw new FurError('attrs-unsupported', `${block.name}: this file has no frame_attrs dataset (it was not made by a capture that stores values with its frames); append to a new file`, { name: block.name });
    }
    if (block.encoding) ds.data.appendChunk(block.data, block.count);
    else if (block.dtype === 'bytes') await ds.data.appendVlen([block.data]);
    else await ds.data.append(block.data, block.count);
    if (ds.attrs) { const text = JSON.stringify(block.attrs ?? {}); for (let i = 0; i < block.count; i++) attrs.push(text); }
    bytes += block.data.length;
    for (let i = 0; i < block.count; i++) { names.push(block.name); pages.push(i); mtimes.push(block.mtimeMs / 1000); }
    // a producer faster than the link waits here, so frames held for sending stay bounded
    if (pace) await pace();
  }
  await hashing;
  await ds.name.appendVlen(names);
  await ds.page.append(Uint32Array.from(pages));
  await ds.mtime.append(Float64Array.from(mtimes));
  await ds.sha256.append(Buffer.concat(hashes));
  if (ds.attrs) await ds.attrs.appendVlen(attrs);
  return bytes;
}

/** The list's items, each taken out of it as it is handed on. */
function* drain<T>(list: T[]): Generator<T> {
  while (list.length) yield list.shift()!;
}

/**
 * What an existing fur file holds, by source file name: frames committed, and their SHA-256 by page
 * where recorded. Only the first `rows` rows count (per-frame datasets can run ahead of the frames).
 */
export async function readCommitted(file: H5File, dataset: string, rows: number, committed: Map<string, number>, hashes: Map<string, Uint8Array[]>): Promise<void> {
  const [namesPath, pagesPath, hashesPath] = ['frame_name', 'frame_page', 'frame_sha256'].map((n) => siblingPath(dataset, n));
  if (!file.has(namesPath)) return;
  const names = await file.dataset(namesPath).readVlen(0, rows);
  const hashed = file.has(hashesPath) && file.has(pagesPath);
  const sha = hashed ? await file.dataset(hashesPath).read(0, rows) : undefined;
  const pages = hashed ? new Uint32Array((await file.dataset(pagesPath).read(0, rows)).slice().buffer) : undefined;
  names.forEach((n, row) => {
    const name = Buffer.from(n).toString('utf8');
    committed.set(name, (committed.get(name) ?? 0) + 1);
    if (sha && pages) {
      const list = hashes.get(name) ?? [];
      list[pages[row]] = sha.subarray(row * 32, row * 32 + 32);
      hashes.set(name, list);
    }
  });
}

/** True when a local file's frames are exactly the frames stored under its name. */
export function sameFrames(block: FrameBlock, stored: Uint8Array[]): boolean {
  if (stored.length !== block.count) return false;
  const local = frameHashes(block);
  return stored.every((h, i) => h !== undefined && Buffer.compare(Buffer.from(h), Buffer.from(local.subarray(i * 32, i * 32 + 32))) === 0);
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/**
 * frameHashes of a block, a few frames at a time with the event loop let in between: hashing a
 * whole file at once would hold up the sending (and the acknowledgements) of everything in
 * flight for tens of milliseconds, and hashing in the thread pool copies every frame first.
 */
async function hashBlock(block: FrameBlock): Promise<Uint8Array> {
  const hashes = new Uint8Array(block.count * 32);
  const frameBytes = block.data.length / block.count;
  let sinceYield = 0;
  for (let i = 0; i < block.count; i++) {
    if (sinceYield >= HASH_SLICE) {
      await new Promise((r) => setImmediate(r));
      sinceYield = 0;
    }
    hashes.set(sha256(block.data.subarray(i * frameBytes, (i + 1) * frameBytes)), i * 32);
    sinceYield += frameBytes;
  }
  return hashes;
}

/** bytes hashed between turns of the event loop (~1 ms) */
const HASH_SLICE = 1 << 20;

export function frameHashes(block: FrameBlock): Uint8Array {
  const out = new Uint8Array(block.count * 32);
  const frameBytes = block.data.length / block.count;
  for (let i = 0; i < block.count; i++) out.set(sha256(block.data.subarray(i * frameBytes, (i + 1) * frameBytes)), i * 32);
  return out;
}
