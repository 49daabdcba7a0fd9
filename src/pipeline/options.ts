/** The settings of one upload run, validated once, with the defaults a lab gets without asking. */
import { FurError } from '../errors.js';
import type { Filter } from '../hdf5/index.js';
import type { ReadOptions } from '../source/readers/index.js';
import type { FrameValue, InstrumentField } from './instrument.js';
import { checkMetadata, type MetadataItem } from './metadata.js';
import { ENTRY, FRAMES } from './nexus.js';

export type Method = 'append' | 'batches' | 'files';
export type LayoutKind = 'nexus' | 'flat';
export type OnMismatch = 'stop' | 'skip';

export interface PipelineOptions {
  method: Method;
  /** frames per batch: the unit of packaging, commit and local cleanup */
  batchFrames: number;
  /** a batch closes after this long even if not full, so slow captures still reach the destination */
  batchSeconds: number;
  /** frames per chunk along the frame axis; undefined = automatic (1-8 MiB chunks) */
  chunkFrames?: number;
  /** deflate level 1-9, or undefined for none */
  gzipLevel?: number;
  shuffle: boolean;
  /**
   * Fletcher-32 per chunk of numeric frames; undefined = on for `append` (one long-lived file: a
   * chunk damaged in transit or at rest is caught by every HDF5 reader) and off for the others.
   * Never on variable-length (bytes) frames: a chunk of them holds heap references only; the
   * per-frame SHA-256 (fur verify) covers their bytes.
   */
  checksum?: boolean;
  /**
   * dataset path of the frames in `append` and `batches` files (flat layout); in the NeXus layout
   * the frames are at /entry/data/data and this path is a link to them
   */
  dataset: string;
  /** how a new file is laid out (a continued file keeps its own) */
  layout: LayoutKind;
  /** the user's metadata (--attr, --metadata), written into each new file (and a continued one) */
  metadata: MetadataItem[];
  deleteSource: boolean;
  /**
   * With deleteSource, where the destination cannot make a commit durable (no fsync@openssh.com,
   * FTP): delete sources once committed without reading their frames back first (the risk accepted)
   */
  deleteUnsynced?: boolean;
  /**
   * what to do with a file that cannot be used — unreadable, truncated, or frames unlike the first
   * file's dtype/shape: skip it (keep it in place and report it; the run goes on and ends with it
   * listed) or end the run
   */
  onMismatch: OnMismatch;
  read: ReadOptions;
  /**
   * files uploaded at once by the `files` method; undefined = as many as keep the link busy
   * (up to 256 files and 64 MiB of file data in flight)
   */
  parallelFiles?: number;
  /** new files get frame_attrs: the values given with each frame (captures a program or a stream feeds) */
  frameAttrs?: boolean;
  /** what the instrument says about itself (a detector's configuration), written into each new file and a continued one */
  instrument?: readonly InstrumentField[];
  /** values every frame carries, stored per frame in new files (a continued file keeps those it has) */
  frameValues?: readonly FrameValue[];
}

export const DEFAULTS: PipelineOptions = {
  method: 'append',
  batchFrames: 100,
  batchSeconds: 5,
  shuffle: false,
  dataset: '/data',
  layout: 'nexus',
  metadata: [],
  deleteSource: false,
  onMismatch: 'skip',
  read: {},
};

function bad(setting: string, value: unknown, why: string): FurError<'bad-option'> {
  return new FurError('bad-option', `${setting} ${JSON.stringify(value)}: ${why}`, { setting, value });
}

export function validate(o: PipelineOptions): PipelineOptions {
  if (!['append', 'batches', 'files'].includes(o.method)) throw bad('--method', o.method, 'use append, batches or files');
  if (!Number.isInteger(o.batchFrames) || o.batchFrames < 1) throw bad('--batch', o.batchFrames, 'must be a whole number ≥ 1');
  if (!(o.batchSeconds > 0)) throw bad('--batch-seconds', o.batchSeconds, 'must be > 0');
  if (o.chunkFrames !== undefined && (!Number.isInteger(o.chunkFrames) || o.chunkFrames < 1)) {
    throw bad('--chunk-frames', o.chunkFrames, 'must be a whole number ≥ 1');
  }
  if (o.gzipLevel !== undefined && (!Number.isInteger(o.gzipLevel) || o.gzipLevel < 1 || o.gzipLevel > 9)) {
    throw bad('--compression', `gzip:${o.gzipLevel}`, 'gzip level must be 1-9 (e.g. --compression gzip:4)');
  }
  if (!/^(\/[^/\0]+)+$/.test(o.dataset)) throw bad('--dataset', o.dataset, 'must be an absolute HDF5 path like /data or /entry/data');
  if (!['nexus', 'flat'].includes(o.layout)) throw bad('--layout', o.layout, 'use nexus or flat');
  if (o.layout === 'nexus' && o.dataset !== FRAMES && /^\/(entry|frame|sha256_byte|[xyz]|channel|axis_\d+)(\/|$)/.test(o.dataset)) {
    throw bad('--dataset', o.dataset, `the NeXus layout keeps the frames at ${FRAMES} and uses this path itself; choose another link name (default /data) or --layout flat`);
  }
  checkMetadata(o.metadata, o.layout === 'nexus' ? ENTRY : '/');
  if (o.deleteUnsynced && !o.deleteSource) {
    throw new FurError('bad-option', '--delete-unsynced only changes when --delete-source deletes a source; add --delete-source', { setting: '--delete-unsynced' });
  }
  if (o.parallelFiles !== undefined && (!Number.isInteger(o.parallelFiles) || o.parallelFiles < 1)) throw bad('--parallel', o.parallelFiles, 'must be a whole number ≥ 1');
  return o;
}

/** shuffle before deflate (it groups similar bytes), checksum last (it covers what is stored) */
export function filtersOf(o: PipelineOptions): Filter[] {
  const f: Filter[] = [];
  if (o.shuffle) f.push({ id: 'shuffle' });
  if (o.gzipLevel !== undefined) f.push({ id: 'deflate', level: o.gzipLevel });
  if (o.checksum ?? o.method === 'append') f.push({ id: 'fletcher32' });
  return f;
}

/** `gzip`, `gzip:5`, `none` → deflate level */
export function parseCompression(text: string): number | undefined {
  const m = /^(gzip|deflate)(?::(\d))?$/.exec(text.trim().toLowerCase());
  if (text.trim().toLowerCase() === 'none') return undefined;
  if (!m) throw bad('--compression', text, 'use gzip or gzip:LEVEL (1-9), or none');
  const level = m[2] === undefined ? 4 : Number(m[2]);
  if (level < 1 || level > 9) throw bad('--compression', text, 'gzip level must be 1-9');
  return level;
}
