/**
 * A minimal TIFF writer for the simulated camera and for reader fixtures: grey or RGB
 * (or any samples-per-pixel), 8/16/32/64-bit integer and float samples, several pages,
 * optional deflate, either byte order, several strips per page.
 */
import { deflateSync } from 'node:zlib';
import { itemsize, swapBytes, type NumericDtype } from '../frame.js';

export interface TiffPage {
  dtype: NumericDtype;
  /** [height, width] or [height, width, samples] */
  shape: readonly number[];
  /** little-endian, C order */
  data: Uint8Array;
  /** descriptive tags, as instruments write them */
  tags?: TiffTags;
}

export interface TiffTags {
  /** ImageDescription (270) */
  description?: string;
  /** Software (305) */
  software?: string;
  /** DateTime (306), 'YYYY:MM:DD HH:MM:SS' */
  dateTime?: string;
  /** XResolution (282) and YResolution (283): pixels per unit, as numerator and denominator */
  xResolution?: [number, number];
  yResolution?: [number, number];
  /** ResolutionUnit (296): 1 none, 2 inch, 3 centimetre */
  resolutionUnit?: number;
}

export interface TiffWriteOptions {
  bigEndian?: boolean;
  compression?: 'none' | 'deflate' | 'packbits';
  rowsPerStrip?: number;
}

const COMPRESSION = { none: 1, deflate: 8, packbits: 32773 } as const;
const ASCII = 2;
const SHORT = 3;
const LONG = 4;
const RATIONAL = 5;
/** bytes per value as listed (a rational is listed as numerator, denominator) */
const WIDTH = { [ASCII]: 1, [SHORT]: 2, [LONG]: 4, [RATIONAL]: 4 } as const;

interface Entry {
  tag: number;
  type: typeof ASCII | typeof SHORT | typeof LONG | typeof RATIONAL;
  values: number[];
}

function descriptive(t: TiffTags): Entry[] {
  const text = (tag: number, s: string): Entry => ({ tag, type: ASCII, values: [...Buffer.from(s + '\0', 'latin1')] });
  const out: Entry[] = [];
  if (t.description !== undefined) out.push(text(270, t.description));
  if (t.xResolution) out.push({ tag: 282, type: RATIONAL, values: t.xResolution });
  if (t.yResolution) out.push({ tag: 283, type: RATIONAL, values: t.yResolution });
  if (t.resolutionUnit !== undefined) out.push({ tag: 296, type: SHORT, values: [t.resolutionUnit] });
  if (t.software !== undefined) out.push(text(305, t.software));
  if (t.dateTime !== undefined) out.push(text(306, t.dateTime));
  return out;
}

export function encodeTiff(pages: readonly TiffPage[], opts: TiffWriteOptions = {}): Uint8Array {
  const le = !opts.bigEndian;
  const parts: Uint8Array[] = [];
  let size = 8;
  const append = (b: Uint8Array) => {
    parts.push(b);
    size += b.length;
    if (size % 2) { parts.push(new Uint8Array(1)); size++; } // TIFF offsets are word-aligned
  };
  const header = new Uint8Array(8);
  const hv = new DataView(header.buffer);
  header.set(le ? [0x49, 0x49] : [0x4d, 0x4d]);
  hv.setUint16(2, 42, le);
  parts.push(header);

  let linkAt = 4; // where the offset of the next directory goes: the header first, then each IFD's tail
  let linkPart = header;
  for (const page of pages) {
    const [height, width, spp = 1] = page.shape as [number, number, number?];
    const bytesPerSample = itemsize(page.dtype);
    const rowBytes = width * spp * bytesPerSample;
    const rps = Math.max(1, Math.min(opts.rowsPerStrip ?? height, height));
    const samples = page.data.slice();
    if (!le) swapBytes(samples, bytesPerSample);
    const offsets: number[] = [];
    const counts: number[] = [];
    for (let row = 0; row < height; row += rps) {
      let strip: Uint8Array = samples.subarray(row * rowBytes, Math.min(height, row + rps) * rowBytes);
      if (opts.compression === 'deflate') strip = deflateSync(strip);
      else if (opts.compression === 'packbits') strip = packBits(strip);
      offsets.push(size);
      counts.push(strip.length);
      append(strip);
    }
    const format = page.dtype.startsWith('float') ? 3 : page.dtype.startsWith('int') ? 2 : 1;
    const entries: Entry[] = [
      { tag: 256, type: LONG, values: [width] },
      { tag: 257, type: LONG, values: [height] },
      { tag: 258, type: SHORT, values: Array(spp).fill(bytesPerSample * 8) },
      { tag: 259, type: SHORT, values: [COMPRESSION[opts.compression ?? 'none']] },
      { tag: 262, type: SHORT, values: [spp >= 3 ? 2 : 1] },
      { tag: 273, type: LONG, values: offsets },
      { tag: 277, type: SHORT, values: [spp] },
      { tag: 278, type: LONG, values: [rps] },
      { tag: 279, type: LONG, values: counts },
      { tag: 284, type: SHORT, values: [1] },
      { tag: 339, type: SHORT, values: Array(spp).fill(format) },
    ];
    if (spp === 2 || spp > 3) entries.splice(10, 0, { tag: 338, type: SHORT, values: Array(spp - (spp > 3 ? 3 : 1)).fill(0) });
    if (page.tags) {
      entries.push(...descriptive(page.tags));
      entries.sort((a, b) => a.tag - b.tag); // TIFF lists a directory's entries in tag order
    }

    const ifdAt = size;
    const ifdBytes = 2 + entries.length * 12 + 4;
    const ifd = new Uint8Array(ifdBytes + entries.reduce((n, e) => n + outOfLine(e), 0));
    const v = new DataView(ifd.buffer);
    v.setUint16(0, entries.length, le);
    let extra = ifdBytes;
    entries.forEach((e, i) => {
      const at = 2 + i * 12;
      v.setUint16(at, e.tag, le);
      v.setUint16(at + 2, e.type, le);
      v.setUint32(at + 4, e.type === RATIONAL ? e.values.length / 2 : e.values.length, le);
      let dst = at + 8;
      if (outOfLine(e) > 0) {
        v.setUint32(at + 8, ifdAt + extra, le);
        dst = extra;
        extra += outOfLine(e);
      }
      e.values.forEach((x, k) => {
        if (e.type === ASCII) v.setUint8(dst + k, x);
        else if (e.type === SHORT) v.setUint16(dst + 2 * k, x, le);
        else v.setUint32(dst + 4 * k, x, le);
      });
    });
    new DataView(linkPart.buffer, linkPart.byteOffset).setUint32(linkAt, ifdAt, le);
    linkPart = ifd;
    linkAt = ifdBytes - 4;
    append(ifd);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bytes an entry needs outside the IFD (values that do not fit the 4-byte slot), kept even. */
function outOfLine(e: Entry): number {
  const n = e.values.length * WIDTH[e.type];
  return n <= 4 ? 0 : n + (n % 2);
}

/** PackBits with literal runs only: valid, if never smaller; it exists to exercise a reader's decoder. */
function packBits(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length + Math.ceil(src.length / 128));
  let o = 0;
  for (let i = 0; i < src.length; i += 128) {
    const run = src.subarray(i, i + 128);
    out[o++] = run.length - 1;
    out.set(run, o);
    o += run.length;
  }
  return out;
}
