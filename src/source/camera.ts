/**
 * A simulated instrument: writes numbered frame files into a folder at a given rate, the way
 * real acquisition software does (temporary name then rename, or in place in pieces), so the
 * watcher, the pipeline and benchmarks meet the same behaviour as on a real instrument.
 *
 * Files are numbered from 1 (frame000001.tif); frames are indexed from 0 over the whole
 * capture, and file k (1-based) holds frames (k-1)*framesPerFile … — expectedFrame(seed, i, …)
 * regenerates frame i.
 */
import { open, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { FurError } from '../errors.js';
import { elementCount, type NumericDtype } from './frame.js';
import { expectedFrame } from './pattern.js';
import { encodeNpy } from './writers/npy.js';
import { encodeTiff } from './writers/tiff.js';

export { expectedFrame } from './pattern.js';

export type CameraFormat = 'raw' | 'npy' | 'tiff' | 'jpeg';

/**
 * - 'rename':   write `<name>.tmp`, then rename into place (atomic; what careful software does);
 * - 'direct':   write the final name in one call (not atomic: readers must wait for quiet);
 * - 'two-step': write half, pause `pauseMs`, write the rest: a file visibly growing.
 */
export type WriteStyle = 'rename' | 'direct' | 'two-step';

export interface CameraOptions {
  dir: string;
  frames: number;
  format: CameraFormat;
  /** Element type for raw/npy/tiff. Default 'uint16'. */
  dtype?: NumericDtype;
  /** Frame shape; for 'jpeg', the nominal size whose element count sets the blob length. Default [64, 64]. */
  shape?: number[];
  /** Frames per second; 0 or unset writes as fast as possible. */
  fps?: number;
  seed?: number;
  /** Frames in one file (stacks) for raw/npy/tiff. Default 1. */
  framesPerFile?: number;
  prefix?: string;
  digits?: number;
  write?: WriteStyle;
  pauseMs?: number;
  /** Write an empty `<name><marker>` after each file is complete. */
  marker?: string;
  /** Create this file after the last frame file. */
  stopFile?: string;
  /** Stops between files; files already written stay. */
  signal?: AbortSignal;
  /** Called after each file is in place. */
  onFile?: (path: string, firstFrame: number, frames: number) => void;
}

export interface CameraResult {
  files: string[];
  frames: number;
}

const EXTENSIONS: Record<CameraFormat, string> = { raw: '.raw', npy: '.npy', tiff: '.tif', jpeg: '.jpg' };

export function cameraFileName(fileNumber: number, format: CameraFormat, prefix = 'frame', digits = 6): string {
  return `${prefix}${String(fileNumber).padStart(digits, '0')}${EXTENSIONS[format]}`;
}

/** The bytes of one file holding `frames` (each little-endian C-order) in the given format. */
export function encodeFile(format: CameraFormat, dtype: NumericDtype, shape: readonly number[], frames: Uint8Array[]): Uint8Array {
  switch (format) {
    case 'jpeg':
      if (frames.length !== 1) throw new RangeError('a jpeg file holds exactly one frame');
      return frames[0]!;
    case 'raw':
      return concat(frames);
    case 'npy':
      return encodeNpy(dtype, frames.length === 1 ? shape : [frames.length, ...shape], concat(frames));
    case 'tiff':
      return encodeTiff(frames.map((data) => ({ dtype, shape, data })));
  }
}

export async function runCamera(opts: CameraOptions): Promise<CameraResult> {
  const dtype = opts.dtype ?? 'uint16';
  const shape = opts.shape ?? [64, 64];
  const seed = opts.seed ?? 1;
  const perFile = opts.format === 'jpeg' ? 1 : (opts.framesPerFile ?? 1);
  if (!Number.isInteger(opts.frames) || opts.frames < 0) throw bad('frames', opts.frames, 'must be a whole number ≥ 0');
  if (!Number.isInteger(perFile) || perFile < 1) throw bad('framesPerFile', perFile, 'must be a whole number ≥ 1');
  if (opts.format === 'tiff' && !(shape.length === 2 || shape.length === 3)) {
    throw bad('shape', shape.join('x'), 'must be [height, width] or [height, width, samples] for TIFF');
  }
  if (elementCount(shape) === 0) throw bad('shape', shape.join('x'), 'must have at least one element');

  const frameDtype = opts.format === 'jpeg' ? 'bytes' : dtype;
  const start = performance.now();
  const files: string[] = [];
  let written = 0;
  for (let fileNumber = 1; written < opts.frames; fileNumber++) {
    if (opts.signal?.aborted) break;
    const n = Math.min(perFile, opts.frames - written);
    if (opts.fps) {
      const due = start + ((written + n - 1) * 1000) / opts.fps;
      const wait = due - performance.now();
      if (wait > 0) await delay(wait, undefined, { signal: opts.signal }).catch(() => {});
      if (opts.signal?.aborted) break;
    }
    const frames = Array.from({ length: n }, (_, k) => expectedFrame(seed, written + k, frameDtype, shape));
    const path = join(opts.dir, cameraFileName(fileNumber, opts.format, opts.prefix, opts.digits));
    await put(path, encodeFile(opts.format, dtype, shape, frames), opts.write ?? 'rename', opts.pauseMs ?? 50);
    if (opts.marker !== undefined) await writeFile(path + opts.marker, '');
    files.push(path);
    opts.onFile?.(path, written, n);
    written += n;
  }
  if (opts.stopFile !== undefined && !opts.signal?.aborted) await writeFile(join(opts.dir, opts.stopFile), '');
  return { files, frames: written };
}

async function put(path: string, bytes: Uint8Array, style: WriteStyle, pauseMs: number): Promise<void> {
  if (style === 'rename') {
    await writeFile(`${path}.tmp`, bytes);
    await rename(`${path}.tmp`, path);
  } else if (style === 'direct') {
    await writeFile(path, bytes);
  } else {
    const half = Math.floor(bytes.length / 2);
    const fh = await open(path, 'w');
    try {
      await fh.write(bytes, 0, half, 0);
      await fh.sync(); // make the partial file visible with its own size and mtime
      await delay(pauseMs);
      await fh.write(bytes, half, bytes.length - half, half);
    } finally {
      await fh.close();
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function bad(name: string, value: unknown, why: string): FurError<'bad-setting'> {
  return new FurError('bad-setting', `camera ${name}: ${String(value)} ${why}`, { setting: name, value });
}
