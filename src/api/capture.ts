/**
 * A capture a program feeds from memory: frames pushed one by one (a camera SDK's buffers, a
 * simulation's output), stored with the same batches, commits, reconnection and resume as the
 * command stores a folder's files. Each frame has a name, stored with it; the destination is the
 * record of which names are committed, so a program restarted after a crash opens the same
 * destination, reads `committed` and goes on from there, and fur refuses a name twice.
 */
import { EventEmitter } from 'node:events';
import { FurError } from '../errors.js';
import { checkMethod, connectUrl } from '../pipeline/connect.js';
import { Progress } from '../pipeline/progress.js';
import type { FrameValue, InstrumentField } from '../pipeline/instrument.js';
import { PushedFrames, type Pushed } from '../pipeline/pushed.js';
import { runResilient } from '../pipeline/resilient.js';
import { frameBytes, itemsize, parseShape, type Dtype, type FrameBlock, type FrameEncoding } from '../source/frame.js';
import { displayOf, summaryOf } from './commands.js';
import { connectTimeoutMs, giveUpAfterMs, openOptionsOf, pipelineOf, type ProgressEvent, type StoreOptions, type Summary } from './options.js';

export interface CaptureOptions extends StoreOptions {
  method?: 'append' | 'batches';
  /** element type of every frame; 'bytes': each frame is an opaque byte string of any length */
  dtype: Dtype;
  /** shape of one frame, e.g. [2048, 2048] (not for 'bytes') */
  shape?: number[];
  /**
   * bytes of frames held in memory — appended and not yet committed — before `append` waits
   * (default 64 MiB). A frame is held until its commit is durable, so that it can be sent again
   * after a reconnection.
   */
  maxBuffered?: number;
  /**
   * what the instrument says about itself, as NeXus fields under /entry/instrument (a detector's
   * configuration: { path: 'detector/distance', value: 0.12, units: 'm' }), written into the file
   */
  instrument?: readonly InstrumentField[];
  /** values every frame carries in its attrs, each stored per frame beside the frames (float64) */
  frameValues?: readonly FrameValue[];
}

export interface FrameOptions {
  /** the frame's name: stored with it, and what says it is committed; each name once per destination */
  name: string;
  /** values stored with the frame (as JSON text in frame_attrs), e.g. { exposure_ms: 10 } */
  attrs?: Record<string, unknown>;
  /**
   * 'bitshuffle-lz4': the frame arrives compressed, as HDF5's bitshuffle filter (32008) stores a
   * chunk (a detector's bslz4 frame, with its 12-byte header), and is stored as it is, one frame
   * per chunk; readers need the bitshuffle plugin. Every frame of a capture is given the same way.
   */
  encoding?: FrameEncoding;
}

/** A frame's bytes: a typed array of the capture's dtype, or raw bytes (C order, little-endian). */
export type FrameData = ArrayBufferView;

const DEFAULT_MAX_BUFFERED = 64 << 20;

/** element types each typed array can carry (raw bytes — Uint8Array, Buffer, DataView — carry any) */
const ARRAYS: Record<string, readonly Dtype[]> = {
  Int8Array: ['int8'], Int16Array: ['int16'], Uint16Array: ['uint16', 'float16'], Int32Array: ['int32'], Uint32Array: ['uint32'],
  BigInt64Array: ['int64'], BigUint64Array: ['uint64'], Float32Array: ['float32'], Float64Array: ['float64'],
};

export class Capture extends EventEmitter {
  private closing?: Promise<Summary>;

  /** @internal opened by openCapture */
  constructor(
    private readonly frames: PushedFrames,
    private readonly running: Promise<Summary>,
    private readonly dtype: Dtype,
    private readonly shape: number[],
  ) {
    super();
  }

  /**
   * Names of the frames committed at the destination: those it held when the capture opened
   * (a restarted program's earlier frames) and every one committed since.
   */
  get committed(): ReadonlySet<string> { return this.frames.committed; }

  /** Bytes of frames appended and not yet committed. */
  get buffered(): number { return this.frames.heldBytes; }

  /**
   * Add a frame (or several of the same shape, back to back, under one name). The bytes are
   * copied at once: the caller may reuse its buffer as soon as this returns. Resolves when fur
   * can take more — at once while less than `maxBuffered` waits to be committed — and rejects if
   * the name was stored or added before, if the frame does not fit the capture's dtype and shape,
   * or once the capture has failed.
   */
  append(frame: FrameData, options: FrameOptions): Promise<void> {
    try {
      const block = this.block(frame, options);
      return this.frames.push({ name: options.name, size: block.data.length, block });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Throws if a frame of this name cannot be added now (stored or added before, or the capture ended). */
  check(name: string): void {
    this.frames.check(name);
  }

  /**
   * @internal Add frames set aside on local disk (a stream's spool): read when they are sent,
   * released (deleted) once committed. Their bytes were checked when they were received.
   */
  appendSpooled(unit: Pushed): Promise<void> {
    return this.frames.push(unit);
  }

  /**
   * No more frames: resolves once every frame appended is committed (and the destination closed),
   * with what the capture stored.
   */
  close(): Promise<Summary> {
    this.closing ??= (async () => {
      this.frames.end();
      return this.running;
    })();
    return this.closing;
  }

  override on(event: 'progress', listener: (e: ProgressEvent) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  private block(frame: FrameData, o: FrameOptions): FrameBlock {
    if (typeof o?.name !== 'string') throw new FurError('bad-frame', 'append(frame, { name }): every frame needs a name (a string)', {});
    this.frames.check(o.name);
    if (!ArrayBuffer.isView(frame)) throw new FurError('bad-frame', `frame ${o.name}: give the frame as a typed array or Buffer`, { name: o.name });
    const kind = frame.constructor.name;
    const allowed = ARRAYS[kind];
    if (allowed && !allowed.includes(this.dtype)) {
      throw new FurError('bad-frame', `frame ${o.name}: a ${kind} does not hold ${this.dtype} values; give a typed array of the capture's dtype, or its bytes`, { name: o.name });
    }
    const size = frameBytes(this.dtype, this.shape);
    const n = frame.byteLength;
    if (o.encoding !== undefined) return this.encoded(frame, o, size);
    if (n === 0 || (size !== undefined && n % size !== 0)) {
      throw new FurError('bad-frame', `frame ${o.name}: ${n} bytes is not a whole number of ${this.dtype} frames of ${this.shape.join('x')} (${size} bytes each)`, { name: o.name });
    }
    const data = new Uint8Array(frame.buffer, frame.byteOffset, n).slice();
    return {
      file: o.name, name: o.name, dtype: this.dtype, shape: this.dtype === 'bytes' ? [] : this.shape,
      count: size === undefined ? 1 : n / size, data, mtimeMs: Date.now(), attrs: attrsOf(o),
    };
  }

  /** One frame as a filtered chunk: its header must say it holds one frame's bytes. */
  private encoded(frame: ArrayBufferView, o: FrameOptions, size: number | undefined): FrameBlock {
    if (o.encoding !== 'bitshuffle-lz4') throw new FurError('bad-frame', `frame ${o.name}: encoding ${JSON.stringify(o.encoding)} is not one fur stores; use 'bitshuffle-lz4' or give the frame's bytes`, { name: o.name });
    if (size === undefined) throw new FurError('bad-frame', `frame ${o.name}: a capture of bytes takes no encoding`, { name: o.name });
    const data = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength).slice();
    const holds = data.length >= 12 ? Number(new DataView(data.buffer).getBigUint64(0)) : -1;
    if (holds !== size) throw new FurError('bad-frame', `frame ${o.name}: the bitshuffle-LZ4 header says ${holds} bytes, a ${this.shape.join('x')} ${this.dtype} frame holds ${size}`, { name: o.name });
    return { file: o.name, name: o.name, dtype: this.dtype, shape: this.shape, count: 1, data, mtimeMs: Date.now(), attrs: attrsOf(o), encoding: o.encoding };
  }
}

/** A copy of the values given with a frame, taken now: later changes to the caller's object do not count. */
function attrsOf(o: FrameOptions): Record<string, unknown> | undefined {
  if (o.attrs === undefined) return undefined;
  if (typeof o.attrs !== 'object' || o.attrs === null || Array.isArray(o.attrs)) throw new FurError('bad-frame', `frame ${o.name}: attrs must be an object of values`, { name: o.name });
  return JSON.parse(JSON.stringify(o.attrs)) as Record<string, unknown>;
}

/**
 * Open (or continue) a capture at `destination`: for `append` the URL names the HDF5 file
 * (sftp://host/data/run42.h5), for `batches` the folder. Resolves once the destination is open
 * and `committed` says what it holds.
 */
export async function openCapture(destination: string, options: CaptureOptions): Promise<Capture> {
  const method = options.method ?? 'append';
  if ((method as string) === 'files') throw new FurError('bad-option', '--method files stores files as they are; a capture of frames is stored with append or batches', { setting: '--method' });
  const pipeline = { ...pipelineOf({ ...options, method }), frameAttrs: true, instrument: options.instrument, frameValues: options.frameValues };
  checkMethod(destination, method);
  const dtype = options.dtype;
  if (typeof dtype !== 'string' || !(dtype === 'bytes' || itemsize(dtype) > 0)) throw new FurError('unknown-dtype', `--dtype ${JSON.stringify(dtype)}: unknown element type`, { setting: '--dtype' });
  const shape = dtype === 'bytes' ? [] : parseShape(JSON.stringify(options.shape ?? ''), '--shape');
  const maxBuffered = options.maxBuffered ?? DEFAULT_MAX_BUFFERED;
  if (!(maxBuffered > 0)) throw new FurError('bad-option', `maxBuffered ${maxBuffered}: must be a number of bytes > 0`, { setting: 'maxBuffered' });

  let capture: Capture | undefined;
  const progress = new Progress((e) => { options.onProgress?.(e); capture?.emit('progress', e); });
  const frames = new PushedFrames('frames from memory', maxBuffered);
  const open = openOptionsOf(options, (message) => progress.event({ type: 'warning', tag: 'destination', message }));
  options.signal?.addEventListener('abort', () => frames.end(), { once: true });
  const running = runResilient({
    frames,
    connect: () => connectUrl(destination, method, open),
    giveUpAfterMs: giveUpAfterMs(options),
    connectTimeoutMs: connectTimeoutMs(options),
    display: displayOf(destination, options),
    options: pipeline, progress, signal: options.signal,
  }).then(summaryOf);
  let failed = false;
  running.catch((e) => { failed = true; frames.fail(e); });
  await frames.opened;
  if (failed) await running; // throws the run's error
  capture = new Capture(frames, running, dtype, shape);
  return capture;
}
