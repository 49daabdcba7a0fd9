/**
 * How frames are laid out in the HDF5 files fur writes (the `append` file and each `batches`
 * file): the frames dataset (N, …frame shape) in the frames' own dtype — or variable-length bytes
 * for opaque files — and per-frame datasets beside it naming where each frame came from.
 *
 * Two layouts (docs/hdf5-layout.md shows both):
 *   nexus (default)  a NeXus file: /entry (NXentry, start_time, end_time), /entry/instrument/detector
 *                    (NXdetector), /entry/data (NXdata: the frames at /entry/data/data and the
 *                    per-frame datasets); the frame axis and the image axes are dimension scales;
 *                    /data is a soft link to the frames, so scripts written for flat files work
 *   flat             the frames at --dataset (/data) and the per-frame datasets beside them
 * A file keeps the layout it was made with: a continued file is read for it.
 */
import { createHash } from 'node:crypto';
import { FurError } from '../errors.js';
import { attachScales, defaultChunks, dimensionOnlyName, dtypeName, fixedString, type Dataset, type DtypeSpec, type H5File } from '../hdf5/index.js';
import { itemsize, type Dtype, type FrameBlock, type FrameEncoding } from '../source/frame.js';
import { FUR_VERSION } from '../version.js';
import { createFrameValues, frameValue, writeInstrument } from './instrument.js';
import { applyMetadata } from './metadata.js';
import { DETECTOR, ENTRY, FRAMES, INSTRUMENT, NXDATA } from './nexus.js';
import { filtersOf, type PipelineOptions } from './options.js';

export interface FrameLayout {
  dtype: Dtype;
  shape: number[];
  /** frames that arrive as filtered chunks, one frame each (see FrameBlock.encoding) */
  encoding?: FrameEncoding;
}

export interface FrameDatasets {
  file: H5File;
  data: Dataset;
  /** source file name of each frame */
  name: Dataset;
  /** frame index within its source file (multi-page TIFF, stacked .npy) */
  page: Dataset;
  /** source file modification time, seconds since 1970: when the file was completed, as fur saw it */
  mtime: Dataset;
  /**
   * SHA-256 of each frame's bytes as stored, so a file can be verified without its sources (of
   * the chunk as received, for frames that arrive filtered: their bytes are never decoded)
   */
  sha256: Dataset;
  /** NeXus layout: each frame's number in the file (the frame axis's dimension scale) */
  index?: Dataset;
  /** NeXus layout: each frame's acquisition time as its source records it (TIFF DateTime), NaN where it does not */
  time?: Dataset;
  /**
   * What appending keeps track of, shared by every view of these datasets (see mapDatasets): the
   * first source file's tags are still to be written (a new file); in the NeXus layout, the
   * earliest and latest frame time so far (ms since 1970), for /entry/start_time and end_time
   */
  state: { describe: boolean; span?: { start: number; end: number } };
  /** the values given with each frame, as JSON text (frames pushed by a program or a stream) */
  attrs?: Dataset;
  /** values every frame carries, each its own per-frame dataset (see FrameValue) */
  values?: { key: string; ds: Dataset }[];
}

export const PER_FRAME = ['frame_name', 'frame_page', 'frame_mtime', 'frame_sha256'] as const;

const MAX_CHUNK = 8 << 20;
const MIN_GOOD_CHUNK = 1 << 20;
/** per-frame datasets: frames per chunk */
const PER_FRAME_CHUNK = 1024;
/** marks a per-frame dataset of a FrameValue (fixed-length: read without a round trip), naming its key */
const FRAME_VALUE_ATTR = 'fur_frame_value';
/** times as CF and UDUNITS write a point in time: readers such as xarray decode them to dates */
const EPOCH_UNITS = 'seconds since 1970-01-01 00:00:00 UTC';

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
 * Where a file's frames are: /entry/data/data in a NeXus file, whatever --dataset says (/data
 * links there); otherwise `dataset`, soft links followed.
 */
export function framesPath(file: H5File, dataset: string): string {
  return file.has(FRAMES) && !file.isGroup(FRAMES) ? FRAMES : file.resolve(dataset);
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

/** Names of the axes of a frame: y, x for an image, y, x, channel for a colour one. */
function frameAxes(shape: number[]): string[] {
  const r = shape.length;
  if (r === 3 && shape[2]! <= 4) return ['y', 'x', 'channel'];
  if (r <= 3) return ['z', 'y', 'x'].slice(3 - r);
  return shape.map((_, i) => `axis_${i + 1}`);
}

/** grey images and colour (RGB, RGBA) ones, as HDF5's image convention and silx name them */
function imageKind(layout: FrameLayout): 'grey' | 'colour' | undefined {
  if (layout.dtype === 'bytes') return undefined;
  if (layout.shape.length === 2) return 'grey';
  if (layout.shape.length === 3 && (layout.shape[2] === 3 || layout.shape[2] === 4)) return 'colour';
  return undefined;
}

/** The frames and their per-frame datasets in a new file, in the layout --layout names. */
export function createFrameDatasets(file: H5File, layout: FrameLayout, o: PipelineOptions): FrameDatasets {
  const nexus = o.layout === 'nexus';
  const frames = nexus ? FRAMES : o.dataset;
  const bytes = layout.dtype === 'bytes';
  const dtype: DtypeSpec = bytes ? 'vlen-bytes' : layout.dtype;
  const frameShape = bytes ? [] : layout.shape;
  // variable-length frames are protected by their SHA-256 (frame_sha256, fur verify): a Fletcher-32
  // over their chunks would check the heap references only
  // a detector's pre-filtered chunks are stored as received, through their own filter
  const filters = layout.encoding ? [{ id: layout.encoding }] : filtersOf(o).filter((f) => !(bytes && f.id === 'fletcher32'));
  const data = file.createDataset(frames, { dtype, shape: [0, ...frameShape], maxshape: [null, ...frameShape], chunks: frameChunks(layout, o), filters });
  const perFrame = (name: string, type: DtypeSpec, frame: number[] = []) =>
    file.createDataset(siblingPath(frames, name), { dtype: type, shape: [0, ...frame], maxshape: [null, ...frame], chunks: [PER_FRAME_CHUNK, ...frame] });
  const ds: FrameDatasets = {
    file, data, state: { describe: true },
    name: perFrame('frame_name', 'vlen-str'), page: perFrame('frame_page', 'uint32'),
    mtime: perFrame('frame_mtime', 'float64'), sha256: perFrame('frame_sha256', 'uint8', [32]),
  };
  if (o.frameAttrs) ds.attrs = perFrame('frame_attrs', 'vlen-str');
  if (o.frameValues?.length) {
    const made = createFrameValues(file, nexus, (n) => siblingPath(frames, n), o.frameValues, (path) => file.createDataset(path, { dtype: 'float64', shape: [0], maxshape: [null], chunks: [PER_FRAME_CHUNK] }));
    ds.values = made.map((d, i) => {
      file.setAttr(d.path, FRAME_VALUE_ATTR, fixedString(o.frameValues![i]!.key));
      return { key: o.frameValues![i]!.key, ds: d };
    });
  }
  file.setAttr(frames, 'fur_layout', bytes ? 'bytes' : 'frames');
  const image = imageKind(layout);
  if (image) {
    // HDF5's image convention: viewers (HDFView, silx) show each frame as a picture
    file.setAttr(frames, 'CLASS', fixedString('IMAGE'));
    file.setAttr(frames, 'IMAGE_VERSION', fixedString('1.2'));
    file.setAttr(frames, 'IMAGE_SUBCLASS', fixedString(image === 'grey' ? 'IMAGE_GRAYSCALE' : 'IMAGE_TRUECOLOR'));
    if (image === 'grey') file.setAttr(frames, 'IMAGE_WHITE_IS_ZERO', { dtype: 'uint8', shape: [], data: [0] });
    else file.setAttr(frames, 'INTERLACE_MODE', fixedString('INTERLACE_PIXEL'));
  }
  file.setAttr('/', 'fur_layout', o.layout);
  if (nexus) createNexus(file, ds, layout, o, image);
  if (o.instrument) writeInstrument(file, nexus, o.instrument);
  applyMetadata(file, nexus ? ENTRY : '/', o.metadata);
  return ds;
}

/** The NeXus structure around the frames (see the module comment and docs/hdf5-layout.md). */
function createNexus(file: H5File, ds: FrameDatasets, layout: FrameLayout, o: PipelineOptions, image: 'grey' | 'colour' | undefined): void {
  const frameShape = layout.dtype === 'bytes' ? [] : layout.shape;
  file.setAttr('/', 'NX_class', 'NXroot');
  file.setAttr('/', 'default', 'entry');
  file.setAttr('/', 'creator', `fur ${FUR_VERSION}`);
  file.createGroup(ENTRY);
  file.setAttr(ENTRY, 'NX_class', 'NXentry');
  file.setAttr(ENTRY, 'default', 'data');
  file.createGroup(INSTRUMENT);
  file.setAttr(INSTRUMENT, 'NX_class', 'NXinstrument');
  file.createGroup(DETECTOR);
  file.setAttr(DETECTOR, 'NX_class', 'NXdetector');
  file.softLink(`${DETECTOR}/data`, FRAMES);
  file.setAttr(NXDATA, 'NX_class', 'NXdata');
  file.setAttr(NXDATA, 'signal', 'data');
  file.setAttr(NXDATA, 'axes', ['frame', ...frameShape.map(() => '.')]);
  file.setAttr(NXDATA, 'frame_indices', 0);
  if (image) file.setAttr(FRAMES, 'interpretation', image === 'grey' ? 'image' : 'rgba-image');
  // per-frame datasets of this layout only
  const perFrame = (name: string, type: DtypeSpec) =>
    file.createDataset(name.startsWith('/') ? name : siblingPath(FRAMES, name), { dtype: type, shape: [0], maxshape: [null], chunks: [PER_FRAME_CHUNK] });
  ds.index = perFrame('/frame', 'int64');
  ds.time = perFrame('frame_time', 'float64');
  // Dimension scales live in the root group: netCDF finds a variable's dimensions in its own group
  // or above it, and /data (in the root group) is the frames too. /entry/data/frame links the
  // frame numbers into the NXdata group, where NeXus looks for the axes it names.
  file.softLink(siblingPath(FRAMES, 'frame'), '/frame');
  const axes = frameAxes(frameShape);
  const scales = [{ path: '/frame', name: 'frame' }];
  for (const [i, axis] of axes.entries()) {
    file.createDataset(`/${axis}`, { dtype: 'float32', shape: [frameShape[i]!], chunks: [frameShape[i]!] });
    scales.push({ path: `/${axis}`, name: dimensionOnlyName(frameShape[i]!) });
  }
  file.createDataset('/sha256_byte', { dtype: 'float32', shape: [32], chunks: [32] });
  scales.push({ path: '/sha256_byte', name: dimensionOnlyName(32) });
  const frame = ['/frame'];
  attachScales(file, scales, new Map([
    [FRAMES, [...frame, ...axes.map((a) => `/${a}`)]],
    ...[ds.name, ds.page, ds.mtime, ds.time, ...(ds.values ?? []).map((v) => v.ds)].map((d): [string, string[]] => [d.path, frame]),
    [ds.sha256.path, [...frame, '/sha256_byte']],
  ]));
  const describe = (d: Dataset, longName: string, units?: string) => {
    file.setAttr(d.path, 'long_name', longName);
    if (units) file.setAttr(d.path, 'units', units);
  };
  describe(ds.index, 'number of the frame in this file');
  describe(ds.name, 'source file of the frame');
  describe(ds.page, 'index of the frame within its source file');
  describe(ds.mtime, 'modification time of the source file: when it was completed, as fur saw it', EPOCH_UNITS);
  describe(ds.time, 'acquisition time the source file records (TIFF DateTime, local time), NaN where it records none', EPOCH_UNITS);
  describe(ds.sha256, 'SHA-256 of the frame as stored (fur verify checks it)');
  if (o.dataset !== FRAMES) file.softLink(o.dataset, FRAMES);
  ds.state.span = { start: Infinity, end: -Infinity };
}

/**
 * The frame datasets of an existing file, checked against the frames about to be added; the
 * user's metadata given to this run is written too (replacing values of the same name).
 */
export function openFrameDatasets(file: H5File, layout: FrameLayout, o: PipelineOptions, where: string): FrameDatasets {
  const ds = checkFrameDatasets(file, layout, o, where);
  if (o.instrument) writeInstrument(file, ds.data.path === FRAMES, o.instrument);
  applyMetadata(file, ds.data.path === FRAMES ? ENTRY : '/', o.metadata);
  return ds;
}

/** openFrameDatasets without writing anything: a check that the frames fit the file. */
export function checkFrameDatasets(file: H5File, layout: FrameLayout, o: PipelineOptions, where: string): FrameDatasets {
  const frames = framesPath(file, o.dataset);
  const need = [frames, ...PER_FRAME.map((n) => siblingPath(frames, n))];
  for (const p of need) {
    if (!file.has(p) || file.isGroup(p)) {
      throw new FurError('not-a-fur-file', `${where}: has no dataset ${p}; it was not written by fur with --dataset ${o.dataset}; choose another destination file`, { where, path: p });
    }
  }
  const data = file.dataset(frames);
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
      `${where}: ${frames} holds frames of ${data.frameShape.join('x') || 'bytes'} ${dtypeName(data.type)}, the source has ${layout.shape.join('x') || 'bytes'} ${layout.dtype}; append to a new file`,
      { where });
  }
  const ds: FrameDatasets = {
    file, data, state: { describe: false },
    name: file.dataset(need[1]!), page: file.dataset(need[2]!), mtime: file.dataset(need[3]!), sha256: file.dataset(need[4]!),
    attrs: file.has(siblingPath(frames, 'frame_attrs')) ? file.dataset(siblingPath(frames, 'frame_attrs')) : undefined,
    values: frameValuesOf(file, frames),
  };
  const time = siblingPath(frames, 'frame_time');
  if (frames === FRAMES && file.has('/frame') && file.has(time)) {
    ds.index = file.dataset('/frame');
    ds.time = file.dataset(time);
    ds.state.span = { start: entryTime(file, 'start_time') ?? Infinity, end: entryTime(file, 'end_time') ?? -Infinity };
  }
  return ds;
}

/**
 * The per-frame value datasets beside the frames, found by their mark: a continued file goes on
 * filling those it has, whatever the run that continues it was asked for.
 */
function frameValuesOf(file: H5File, frames: string): { key: string; ds: Dataset }[] | undefined {
  const dir = siblingPath(frames, '');
  const found = file.paths().filter((p) => p.startsWith(dir) && !p.slice(dir.length).includes('/') && !file.isGroup(p)).flatMap((p) => {
    const mark = file.attributes(p).find((a) => a.name === FRAME_VALUE_ATTR);
    return mark && mark.type.class === 'string' ? [{ key: Buffer.from(mark.data).toString('utf8').replace(/\0+$/, ''), ds: file.dataset(p) }] : [];
  });
  return found.length ? found : undefined;
}

/** a NeXus file's /entry/start_time or end_time (ms since 1970), as written by `recordSpan` */
function entryTime(file: H5File, name: string): number | undefined {
  const c = file.compact(`${ENTRY}/${name}`);
  if (!c) return undefined;
  const t = Date.parse(Buffer.from(c.data).toString('utf8').replace(/\0+$/, ''));
  return Number.isNaN(t) ? undefined : t;
}

/** every dataset of the layout: the frames first, then the per-frame ones */
export function datasetsOf(ds: FrameDatasets): Dataset[] {
  return [ds.data, ...perFrameOf(ds)];
}

/** the per-frame datasets (cut back to the frames when a file is continued) */
export function perFrameOf(ds: FrameDatasets): Dataset[] {
  return [ds.name, ds.page, ds.mtime, ds.sha256, ...(ds.index ? [ds.index] : []), ...(ds.time ? [ds.time] : []), ...(ds.attrs ? [ds.attrs] : []), ...(ds.values ?? []).map((v) => v.ds)];
}

/** The same datasets, each replaced by `wrap(d)` (S3 append notes what is appended to each); the state is shared. */
export function mapDatasets(ds: FrameDatasets, wrap: (d: Dataset) => Dataset): FrameDatasets {
  const out: FrameDatasets = { ...ds, data: wrap(ds.data), name: wrap(ds.name), page: wrap(ds.page), mtime: wrap(ds.mtime), sha256: wrap(ds.sha256) };
  if (ds.index) out.index = wrap(ds.index);
  if (ds.time) out.time = wrap(ds.time);
  if (ds.attrs) out.attrs = wrap(ds.attrs);
  if (ds.values) out.values = ds.values.map((v) => ({ key: v.key, ds: wrap(v.ds) }));
  return out;
}

/** What the first source file says about itself (TIFF tags), as attributes of the frames. */
function describeSource(ds: FrameDatasets, block: FrameBlock): void {
  ds.state.describe = false;
  // numbers (resolutions: rationals) as float64 even when whole
  for (const [name, value] of Object.entries(block.source?.tags ?? {})) ds.file.setAttr(ds.data.path, name, typeof value === 'number' ? { dtype: 'float64', shape: [], data: [value] } : value);
}

/** /entry/start_time and end_time (ISO 8601, UTC) follow the earliest and latest frame time. */
function recordSpan(ds: FrameDatasets, times: number[]): void {
  const span = ds.state.span!;
  const start = Math.min(span.start, ...times);
  const end = Math.max(span.end, ...times);
  if (!Number.isFinite(start)) return;
  if (start !== span.start) ds.file.writeCompact(`${ENTRY}/start_time`, new Date(start).toISOString());
  if (end !== span.end) ds.file.writeCompact(`${ENTRY}/end_time`, new Date(end).toISOString());
  span.start = start;
  span.end = end;
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
  const acquired: number[] = [];
  const hashes: Uint8Array[] = [];
  const attrs: string[] = [];
  const values = (ds.values ?? []).map(() => [] as number[]);
  // a block is hashed while its frames go out, a slice at a time (see hashBlock)
  let hashing: Promise<void> = Promise.resolve();
  for await (const block of Array.isArray(blocks) ? drain(blocks) : blocks) {
    if (ds.state.describe) describeSource(ds, block);
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
    ds.values?.forEach((v, k) => { const x = frameValue(block.attrs, v.key); for (let i = 0; i < block.count; i++) values[k]!.push(x); });
    bytes += block.data.length;
    for (let i = 0; i < block.count; i++) {
      names.push(block.name);
      pages.push(i);
      mtimes.push(block.mtimeMs / 1000);
      acquired.push((block.source?.acquiredMs?.[i] ?? NaN) / 1000);
    }
    // a producer faster than the link waits here, so frames held for sending stay bounded
    if (pace) await pace();
  }
  await hashing;
  await ds.name.appendVlen(names);
  await ds.page.append(Uint32Array.from(pages));
  await ds.mtime.append(Float64Array.from(mtimes));
  await ds.sha256.append(Buffer.concat(hashes));
  if (ds.index) {
    const first = ds.index.length;
    await ds.index.append(BigInt64Array.from(names, (_, i) => BigInt(first + i)));
  }
  if (ds.time) await ds.time.append(Float64Array.from(acquired));
  // a frame's time: when it was acquired where the source says, else when its file was completed
  if (ds.state.span) recordSpan(ds, acquired.map((t, i) => 1000 * (Number.isNaN(t) ? mtimes[i]! : t)));
  if (ds.attrs) await ds.attrs.appendVlen(attrs);
  for (const [k, v] of (ds.values ?? []).entries()) await v.ds.append(Float64Array.from(values[k]!));
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
  const frames = framesPath(file, dataset);
  const [namesPath, pagesPath, hashesPath] = ['frame_name', 'frame_page', 'frame_sha256'].map((n) => siblingPath(frames, n));
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
