/**
 * What a detector or DAQ sends over ZeroMQ, as frames fur stores. Two formats, each a multipart
 * message per event:
 *
 *  - DECTRIS EIGER stream v1: a series header (`dheader-1.0`, then the detector configuration as
 *    JSON when header_detail is basic or all), per image `dimage-1.0` + `dimage_d-1.0` + the data
 *    blob + `dconfig-1.0` (+ an appendix), and `dseries_end-1.0`. `dimage_d` gives the shape as
 *    [x, y] (columns first), so a frame is stored as [y, x], as the detector's own files hold it.
 *  - plain, for DAQ software: part 1 JSON `{ "frame": n, "shape": [...], "dtype": "uint16",
 *    "name"?, "attrs"? }`, part 2 the frame's bytes (C order, little-endian); `{ "end": true }`
 *    ends a series.
 */
import { uncompressSync } from 'lz4-napi';
import { FurError } from '../errors.js';
import { frameBytes, isDtype, type Dtype, type FrameEncoding } from '../source/frame.js';

export type StreamFormat = 'eiger' | 'plain';

export type StreamEvent =
  | { kind: 'header'; series?: number; config?: Record<string, unknown> }
  | {
    kind: 'frame'; series?: number; frame: number; dtype: Dtype; shape: number[];
    /** the frame's bytes, or (encoding set) one HDF5 chunk through that filter */
    data: Uint8Array; encoding?: FrameEncoding; name?: string; attrs?: Record<string, unknown>;
  }
  | { kind: 'end'; series?: number }
  /** a message the format defines that carries no frame (e.g. EIGER's flatfield parts) */
  | { kind: 'other' };

function json(part: Uint8Array | undefined, what: string): Record<string, unknown> {
  if (part === undefined) throw bad(`${what} is missing`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString('utf8'));
  } catch {
    throw bad(`${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function bad(message: string): FurError {
  return new FurError('stream-message', `stream: ${message}`, {});
}

/** The format a message is in, from its first part; undefined if neither. */
export function recognise(parts: Uint8Array[]): StreamFormat | undefined {
  let head: Record<string, unknown>;
  try { head = json(parts[0], 'part 1'); } catch { return undefined; }
  if (typeof head.htype === 'string' && /^d(header|image|series_end)/.test(head.htype)) return 'eiger';
  if (typeof head.frame === 'number' || head.end === true) return 'plain';
  return undefined;
}

export function decode(format: StreamFormat, parts: Uint8Array[]): StreamEvent {
  return format === 'eiger' ? decodeEiger(parts) : decodePlain(parts);
}

function seriesOf(head: Record<string, unknown>): number | undefined {
  return typeof head.series === 'number' ? head.series : undefined;
}

function frameNumber(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${what}: "frame" must be a whole number ≥ 0, got ${JSON.stringify(v)}`);
  return v;
}

function shapeOf(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || v.length === 0 || v.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d <= 0)) {
    throw bad(`${what}: "shape" must be a list of positive sizes, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

function dtypeOf(v: unknown, what: string): Dtype {
  if (typeof v !== 'string' || !isDtype(v) || v === 'bytes') throw bad(`${what}: unknown element type ${JSON.stringify(v)}`);
  return v;
}

function decodeEiger(parts: Uint8Array[]): StreamEvent {
  const head = json(parts[0], 'part 1');
  const series = seriesOf(head);
  switch (head.htype) {
    case 'dheader-1.0': {
      // with header_detail basic or all, part 2 is the detector configuration
      const config = head.header_detail !== 'none' && parts.length > 1 ? json(parts[1], 'dheader part 2 (detector configuration)') : undefined;
      return { kind: 'header', series, config };
    }
    case 'dseries_end-1.0':
      return { kind: 'end', series };
    case 'dimage-1.0':
      return eigerImage(head, parts, series);
    default:
      return { kind: 'other' };
  }
}

function eigerImage(head: Record<string, unknown>, parts: Uint8Array[], series: number | undefined): StreamEvent {
  const frame = frameNumber(head.frame, 'dimage-1.0');
  const d = json(parts[1], `image ${frame}: dimage_d-1.0`);
  const what = `image ${frame}`;
  const [x, y, ...rest] = shapeOf(d.shape, what);
  // [x, y] is columns, rows: stored as rows × columns (C order), as the detector's files hold it
  const shape = [...rest.reverse(), y ?? 1, x!];
  const dtype = dtypeOf(d.type, what);
  const blob = parts[2];
  if (blob === undefined) throw bad(`${what}: the data part is missing`);
  const size = frameBytes(dtype, shape)!;
  const config = parts[3] ? json(parts[3], `${what}: dconfig-1.0`) : {};
  const attrs: Record<string, unknown> = {};
  for (const k of ['start_time', 'stop_time', 'real_time']) if (k in config) attrs[k] = config[k];
  const encoding = String(d.encoding ?? '<');
  if (encoding.endsWith('>')) throw bad(`${what}: big-endian data (encoding ${encoding}) is not stored; set the detector to little-endian`);
  if (encoding === '<') return { kind: 'frame', series, frame, dtype, shape, data: exact(blob, size, what), attrs };
  if (encoding === 'lz4<') return { kind: 'frame', series, frame, dtype, shape, data: lz4Block(blob, size, what), attrs };
  if (/^bs(8|16|32)-lz4<$/.test(encoding)) return { kind: 'frame', series, frame, dtype, shape, data: bslz4Chunk(blob, size, what), encoding: 'bitshuffle-lz4', attrs };
  throw bad(`${what}: encoding ${encoding} is not one fur stores (<, lz4<, bs8-lz4<, bs16-lz4<, bs32-lz4<)`);
}

function exact(data: Uint8Array, size: number, what: string): Uint8Array {
  if (data.length !== size) throw bad(`${what}: ${data.length} bytes of data for a frame of ${size} bytes`);
  return data;
}

/** An LZ4 block without a size header, to the frame's bytes. */
function lz4Block(blob: Uint8Array, size: number, what: string): Uint8Array {
  const framed = Buffer.allocUnsafe(4 + blob.length);
  framed.writeUInt32LE(size, 0);
  framed.set(blob, 4);
  let out: Buffer;
  try {
    out = uncompressSync(framed);
  } catch (e) {
    throw bad(`${what}: the LZ4 data does not decompress (${(e as Error).message})`);
  }
  return exact(out, size, `${what} (decompressed)`);
}

/**
 * A bitshuffle + LZ4 frame, as HDF5's filter 32008 stores a chunk: a 12-byte header (the bytes it
 * holds, 64-bit big-endian; the block size in bytes, 32-bit big-endian) and the blocks. Stored as
 * it came; the header is checked against the frame's size.
 */
function bslz4Chunk(blob: Uint8Array, size: number, what: string): Uint8Array {
  if (blob.length < 12) throw bad(`${what}: ${blob.length} bytes is too short for bitshuffle-LZ4 data`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const total = Number(view.getBigUint64(0));
  if (total !== size) throw bad(`${what}: the bitshuffle-LZ4 header says ${total} bytes, a frame holds ${size}`);
  return blob;
}

function decodePlain(parts: Uint8Array[]): StreamEvent {
  const head = json(parts[0], 'part 1');
  const series = seriesOf(head);
  if (head.end === true) return { kind: 'end', series };
  const frame = frameNumber(head.frame, 'part 1');
  const what = `frame ${frame}`;
  const shape = shapeOf(head.shape, what);
  const dtype = dtypeOf(head.dtype, what);
  if (head.name !== undefined && typeof head.name !== 'string') throw bad(`${what}: "name" must be a string`);
  if (head.attrs !== undefined && (typeof head.attrs !== 'object' || head.attrs === null || Array.isArray(head.attrs))) throw bad(`${what}: "attrs" must be an object`);
  const blob = parts[1];
  if (blob === undefined) throw bad(`${what}: part 2 (the frame's bytes) is missing`);
  return {
    kind: 'frame', series, frame, dtype, shape, data: exact(blob, frameBytes(dtype, shape)!, what),
    name: head.name as string | undefined, attrs: head.attrs as Record<string, unknown> | undefined,
  };
}
