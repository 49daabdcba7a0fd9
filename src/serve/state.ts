/**
 * Everything a live view shows, gathered from the run's events as they pass (each costs a few
 * assignments): the figures, the rate history over the whole run, commits, reconnects, errors,
 * kept files, the destination and how to open it, and the latest committed frame's details.
 * `status()` is the JSON of /status and of every update the page gets.
 */
import { statfsSync } from 'node:fs';
import type { RunEvent } from '../pipeline/progress.js';
import { FUR_VERSION } from '../version.js';
import { FigureReader, type Figures } from './figures.js';
import type { FrameTap } from './frames.js';
import { geometry } from './thumbnail.js';

export interface LiveSetup {
  command: 'watch' | 'upload';
  method: 'append' | 'batches' | 'files';
  dataset: string;
  /** how chunks are stored: e.g. ['gzip:4', 'shuffle', 'Fletcher-32'] */
  filters: string[];
  /** the destination URL without secrets (the form every message uses), and an S3 endpoint */
  destination: string;
  endpoint?: string;
  /** --delete-source: committed files leave the local disk */
  deleteSource: boolean;
}

/** points kept for the chart; past this every other one is dropped and sampling halves */
const MAX_POINTS = 1800;
const MAX_ERRORS = 50;
/** the local disk is looked at no more often than this, however many ask */
const DISK_MS = 1000;

export interface Chart {
  /** seconds since the start */
  t: number[];
  /** bytes/s leaving for the destination, and the instrument's (watch; null where unknown) */
  upload: number[];
  instrument: (number | null)[];
  /** frames/s of the same */
  uploadFps: (number | null)[];
  instrumentFps: (number | null)[];
  /** bumped whenever points were dropped: a page then takes the whole chart again */
  version: number;
}

export type RunState = 'starting' | 'running' | 'reconnecting' | 'finished' | 'failed';

export class LiveState {
  state: RunState = 'starting';
  private source?: string;
  private figures?: Figures;
  private readonly reader = new FigureReader();
  private commits = 0;
  private lastCommitAt?: number;
  private reconnects = 0;
  private readonly errors: { at: string; tag: string; message: string }[] = [];
  private readonly kept = new Map<string, { file: string; tag: string; message: string }>();
  private fileBytes?: number;
  private ended?: { endReason: string; seconds: number; at: string };
  readonly chart: Chart = { t: [], upload: [], instrument: [], uploadFps: [], instrumentFps: [], version: 0 };
  private stride = 1;
  private ticks = 0;
  private disk?: { at: number; free?: number };
  /** called after every change a page should see at once (a commit, an error, the end) */
  onChange?: () => void;

  constructor(readonly setup: LiveSetup, private readonly frames: FrameTap) {}

  observe(e: RunEvent): void {
    switch (e.type) {
      case 'start':
        this.state = 'running';
        this.source = e.source;
        return;
      case 'status':
        this.figures = this.read(e);
        if (this.ticks++ % this.stride === 0) this.point(this.figures);
        return;
      case 'commit':
        this.commits++;
        this.lastCommitAt = Date.now();
        if (this.frames.latest?.fileBytes !== undefined) this.fileBytes = this.frames.latest.fileBytes;
        break;
      case 'rejected':
        this.kept.set(e.file, { file: e.file, tag: e.tag, message: e.message });
        break;
      case 'retried':
        this.kept.delete(e.file);
        break;
      case 'warning':
        this.error(e.tag, e.message);
        break;
      case 'disconnected':
        this.state = 'reconnecting';
        this.error(e.tag, `${e.message} (retrying in ${e.retryInSec} s, attempt ${e.attempt})`);
        break;
      case 'reconnected':
        this.state = 'running';
        this.reconnects++;
        break;
      case 'done':
        this.state = 'finished';
        // the last status event may precede the last commit: the end's own counts are final
        this.figures = this.read({
          ...e.progress, type: 'status', etaSec: undefined, backlog: { files: 0, bytes: 0 },
          files: { ...e.progress.files, committed: e.files }, frames: { ...e.progress.frames, committed: e.frames },
          bytes: { ...e.progress.bytes, committed: e.bytes }, elapsedSec: Math.max(e.seconds, this.figures?.elapsedSec ?? 0),
        });
        this.ended = { endReason: e.endReason, seconds: e.seconds, at: new Date().toISOString() };
        break;
      default:
        return;
    }
    this.onChange?.();
  }

  private read(e: Extract<RunEvent, { type: 'status' }>): Figures {
    // --method files: the files committed are the sources themselves (the frame tap sees no batches)
    const source = this.setup.method === 'files' ? { files: e.files.committed, bytes: e.bytes.committed, frames: e.frames.committed } : this.frames.source;
    return this.reader.read(e, this.reconnects, this.kept.size, source, this.frames.latest?.block.count ?? 1, this.setup.command === 'watch');
  }

  /** the run ended with an error (no done event) */
  failed(message: string): void {
    this.state = 'failed';
    this.error('failed', message);
    this.onChange?.();
  }

  private error(tag: string, message: string): void {
    this.errors.push({ at: new Date().toISOString(), tag, message });
    if (this.errors.length > MAX_ERRORS) this.errors.shift();
  }

  private point(f: Figures): void {
    const c = this.chart;
    // bytes a frame takes on the wire (all commits so far)
    const wire = f.frames.committed ? f.bytes.committed / f.frames.committed : undefined;
    c.t.push(f.elapsedSec);
    c.upload.push(f.rate.current);
    c.instrument.push(f.instrument?.rate ?? null);
    c.uploadFps.push(wire ? Number((f.rate.current / wire).toFixed(2)) : null);
    c.instrumentFps.push(f.instrument?.fps ?? null);
    if (c.t.length > MAX_POINTS) {
      // the whole run stays on the chart: keep every other point, sample half as often
      for (const k of ['t', 'upload', 'instrument', 'uploadFps', 'instrumentFps'] as const) {
        (c[k] as unknown[]) = (c[k] as unknown[]).filter((_, i) => i % 2 === 0);
      }
      c.version++;
      this.stride *= 2;
    }
  }

  /**
   * The figures with the source folder's disk: its free bytes, and when it is full at the rate
   * the instrument fills it (less the rate committed files leave it, with --delete-source).
   * Looked at when someone asks, at most once a second.
   */
  private withDisk(f: Figures): Figures {
    const now = Date.now();
    if (this.source && (!this.disk || now - this.disk.at >= DISK_MS)) {
      let free: number | undefined;
      try {
        const s = statfsSync(this.source);
        free = s.bavail * s.bsize;
      } catch { /* a source that is not a folder (or is gone): no disk figure */ }
      this.disk = { at: now, free };
    }
    const free = this.disk?.free;
    if (free === undefined) return f;
    const i = f.instrument;
    const filling = i ? (this.setup.deleteSource ? i.behindBy : i.rate) : 0;
    return { ...f, disk: { free, ...(filling > 0 ? { fullInSec: Math.round(free / filling) } : {}) } };
  }

  status(withChart = true): LiveStatus {
    const s = this.setup;
    const latest = this.frames.latest;
    const g = latest ? geometry(latest.block.shape) : undefined;
    return {
      fur: FUR_VERSION,
      state: this.state,
      command: s.command,
      at: new Date().toISOString(),
      source: this.source,
      destination: {
        url: s.destination, ...(s.endpoint ? { endpoint: s.endpoint } : {}), method: s.method, dataset: s.dataset, filters: s.filters,
        layout: layoutName(s),
        ...(this.fileBytes !== undefined ? { fileBytes: this.fileBytes } : {}),
        ...(s.method === 'files' ? {} : { sidecar: `${s.method === 'append' ? s.destination : `${s.destination.replace(/\/$/, '')}/<batch>.h5`}.kerchunk.json` }),
      },
      figures: this.figures ? this.withDisk(this.figures) : null,
      commits: this.commits,
      ...(this.lastCommitAt !== undefined ? { lastCommitAt: new Date(this.lastCommitAt).toISOString() } : {}),
      reconnects: this.reconnects,
      errors: this.errors,
      kept: [...this.kept.values()],
      frame: latest ? {
        seq: latest.seq, name: latest.name, row: latest.firstRow + latest.block.count - 1, firstRow: latest.firstRow, pages: latest.block.count,
        dtype: latest.block.dtype, shape: latest.block.shape,
        ...(typeof g === 'string' ? { notDrawn: g } : {}),
        writtenAt: new Date(latest.writtenAt).toISOString(), committedAt: new Date(latest.committedAt).toISOString(),
      } : null,
      open: openSnippets(s),
      ...(this.ended ? { ended: this.ended } : {}),
      ...(withChart ? { chart: this.chart } : {}),
    };
  }
}

export interface LiveStatus {
  fur: string;
  state: RunState;
  command: 'watch' | 'upload';
  at: string;
  source?: string;
  destination: { url: string; endpoint?: string; method: string; dataset: string; filters: string[]; layout: string; fileBytes?: number; sidecar?: string };
  figures: Figures | null;
  commits: number;
  lastCommitAt?: string;
  reconnects: number;
  errors: { at: string; tag: string; message: string }[];
  kept: { file: string; tag: string; message: string }[];
  frame: null | {
    seq: number; name: string; row: number; firstRow: number; pages: number; dtype: string; shape: number[];
    notDrawn?: string; writtenAt: string; committedAt: string;
  };
  open: { h5py?: string; xarray?: string };
  ended?: { endReason: string; seconds: number; at: string };
  chart?: Chart;
}

function layoutName(s: LiveSetup): string {
  switch (s.method) {
    case 'append': return `one HDF5 file, frames appended along the first axis of ${s.dataset}`;
    case 'batches': return `one HDF5 file per batch, frames along the first axis of ${s.dataset}`;
    case 'files': return 'each source file as it is';
  }
}

/** Python that opens the file: h5py, and xarray through the kerchunk sidecar (append only: one file to name) */
function openSnippets(s: LiveSetup): { h5py?: string; xarray?: string } {
  if (s.method !== 'append') return {};
  const url = s.destination;
  const file = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url.startsWith('/') ? url : undefined;
  const [parent, name] = splitDataset(s.dataset);
  const opener = file !== undefined
    ? `f = h5py.File(${py(file)}, 'r', swmr=True)`
    : `f = h5py.File(fsspec.open(${py(url)}${storage(s)}).open(), 'r')`;
  const h5py = `import ${file !== undefined ? '' : 'fsspec, '}h5py\n${opener}\nframes = f[${py(s.dataset)}]  # frames.shape[0] frames so far`;
  const sidecar = (file ?? url) + '.kerchunk.json';
  const remote = file !== undefined ? '' : `, remote_protocol=${py(url.split(':')[0]!)}${storage(s, 'remote_options')}`;
  const xarray = `import fsspec, xarray as xr\nm = fsspec.filesystem('reference', fo=${py(sidecar)}${file !== undefined ? '' : `, target_protocol=${py(url.split(':')[0]!)}${storage(s, 'target_options')}`}${remote}).get_mapper('')\n` +
    `ds = xr.open_dataset(m, engine='zarr', consolidated=False${parent ? `, group=${py(parent)}` : ''})\nframes = ds[${py(name)}]`;
  return { h5py, xarray };
}

/** an S3 endpoint, where fsspec must be told it */
function storage(s: LiveSetup, key?: string): string {
  if (!s.endpoint || !s.destination.startsWith('s3://')) return '';
  const opts = `{'client_kwargs': {'endpoint_url': ${py(s.endpoint)}}}`;
  return key ? `, ${key}=${opts}` : `, ${opts.slice(1, -1).replace(/^'client_kwargs': /, 'client_kwargs=')}`;
}

function splitDataset(path: string): [string, string] {
  const parts = path.replace(/^\/+/, '').split('/');
  const name = parts.pop()!;
  return [parts.join('/'), name];
}

function py(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
