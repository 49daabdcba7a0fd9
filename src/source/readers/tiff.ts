/**
 * TIFF frames through utif2. utif2 decodes whatever it can and fills the rest with zeros or
 * logs and carries on, so the structure is checked here first: a half-written TIFF from an
 * instrument must fail loudly, never become a frame of zeros.
 */
import UTIF from 'utif2';
import { FurError } from '../../errors.js';
import { describeLayout, sameShape, swapBytes, type DecodedFrames, type NumericDtype, type SourceInfo } from '../frame.js';

type Ifd = Record<string, unknown> & { data?: Uint8Array; width?: number; height?: number; isLE?: boolean };

/** Compressions whose utif2 decoders are lossless and byte-exact for the depths accepted here. */
const COMPRESSIONS: Record<number, string> = { 1: 'none', 5: 'LZW', 8: 'deflate', 32946: 'deflate', 32773: 'PackBits' };

interface PageLayout {
  dtype: NumericDtype;
  shape: number[];
  bytes: number;
}

export function decodeTiff(bytes: Uint8Array, file: string): DecodedFrames {
  const littleEndian = checkStructure(bytes, file);
  // An exact ArrayBuffer: utif2 indexes `data.buffer` directly for some codecs. A file read whole
  // usually is one already; copying a frame-sized file costs as much as everything else here.
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  const buf = whole ? bytes.buffer as ArrayBuffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let ifds: Ifd[];
  try {
    ifds = (UTIF.decode(buf) as unknown as Ifd[]).filter((p) => !isReducedResolution(p));
  } catch (e) {
    throw new FurError('tiff-decode', `${file}: cannot read TIFF directory: ${String(e)}`, { file }, { cause: e });
  }
  if (ifds.length === 0) throw new FurError('tiff-decode', `${file}: TIFF holds no image`, { file });

  let first: PageLayout | undefined;
  const pages: Uint8Array[] = [];
  ifds.forEach((ifd, page) => {
    const layout = pageLayout(ifd, bytes.length, file, page);
    if (first && (first.dtype !== layout.dtype || !sameShape(first.shape, layout.shape))) {
      throw new FurError('tiff-mixed-pages',
        `${file}: page ${page} is ${describeLayout(layout.dtype, layout.shape)} but page 0 is ${describeLayout(first.dtype, first.shape)}; ` +
        'a multi-page TIFF must be a stack of equal frames', { file, page });
    }
    first ??= layout;
    pages.push(decodePage(buf, ifd, layout, littleEndian, file, page));
  });
  const data = pages.length === 1 ? pages[0]! : concat(pages);
  const source = sourceInfo(ifds);
  return { dtype: first!.dtype, shape: first!.shape, count: pages.length, data, ...(source ? { source } : {}) };
}

const RESOLUTION_UNITS: Record<number, string> = { 1: 'none', 2: 'inch', 3: 'centimeter' };

/**
 * The descriptive tags worth keeping (of the first page) and each page's DateTime. A TIFF
 * DateTime ('YYYY:MM:DD HH:MM:SS') has no time zone: it is read as this machine's local time,
 * the instrument's when fur runs beside it.
 */
function sourceInfo(ifds: Ifd[]): SourceInfo | undefined {
  const tags: Record<string, string | number> = {};
  const p = ifds[0]!;
  const description = text(p, 't270');
  if (description !== undefined) tags.tiff_image_description = description;
  const software = text(p, 't305');
  if (software !== undefined) tags.tiff_software = software;
  const dateTime = text(p, 't306');
  if (dateTime !== undefined) tags.tiff_datetime = dateTime;
  const x = rational(p, 't282');
  const y = rational(p, 't283');
  if (x !== undefined) tags.tiff_x_resolution = x;
  if (y !== undefined) tags.tiff_y_resolution = y;
  const unit = num(p, 't296');
  if ((x !== undefined || y !== undefined) || unit !== undefined) tags.tiff_resolution_unit = RESOLUTION_UNITS[unit ?? 2] ?? String(unit);
  const acquired = ifds.map((ifd) => tiffTime(text(ifd, 't306')));
  const info: SourceInfo = {};
  if (Object.keys(tags).length) info.tags = tags;
  if (acquired.some((t) => t !== undefined)) info.acquiredMs = acquired;
  return info.tags || info.acquiredMs ? info : undefined;
}

function text(ifd: Ifd, tag: string): string | undefined {
  const v = ifd[tag];
  const s = Array.isArray(v) ? v.join('') : typeof v === 'string' ? v : undefined;
  return s === undefined ? undefined : s.replace(/\0+$/, '');
}

/** a RATIONAL as a number (utif2 gives [numerator, denominator] pairs, or the quotient) */
function rational(ifd: Ifd, tag: string): number | undefined {
  const v = ifd[tag] as unknown;
  const first = Array.isArray(v) ? v[0] : undefined;
  if (Array.isArray(first) && first.length === 2 && Number(first[1]) !== 0) return Number(first[0]) / Number(first[1]);
  return typeof first === 'number' && Number.isFinite(first) ? first : undefined;
}

/** 'YYYY:MM:DD HH:MM:SS' as local time, ms since 1970; undefined when absent or malformed (often blank) */
export function tiffTime(s: string | undefined): number | undefined {
  const m = s === undefined ? null : /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(s.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return undefined;
  return new Date(y, mo - 1, d, h, mi, sec).getTime();
}

/** Walks the header and directory chain; returns whether the file is little-endian. */
function checkStructure(bytes: Uint8Array, file: string): boolean {
  const truncated = (where: string): never => {
    throw new FurError('tiff-truncated', `${file}: truncated TIFF (${where} lies past the end of ${bytes.length} bytes); ` +
      'the file may still be being written', { file, size: bytes.length });
  };
  if (bytes.length < 8) truncated('header');
  const order = String.fromCharCode(bytes[0]!, bytes[1]!);
  if (order !== 'II' && order !== 'MM') {
    throw new FurError('tiff-bad-header', `${file}: not a TIFF file (no II/MM byte-order mark)`, { file });
  }
  const le = order === 'II';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint16(2, le);
  if (magic === 43) {
    throw new FurError('tiff-unsupported', `${file}: BigTIFF is not supported; write classic TIFF (< 4 GiB) or use raw/npy`, { file });
  }
  if (magic !== 42) throw new FurError('tiff-bad-header', `${file}: not a TIFF file (magic ${magic}, expected 42)`, { file });
  const seen = new Set<number>();
  for (let off = view.getUint32(4, le); off !== 0;) {
    if (seen.has(off)) throw new FurError('tiff-bad-header', `${file}: TIFF directory chain loops back to offset ${off}`, { file });
    seen.add(off);
    if (off + 2 > bytes.length) truncated(`directory at ${off}`);
    const n = view.getUint16(off, le);
    if (off + 2 + n * 12 + 4 > bytes.length) truncated(`directory at ${off}`);
    off = view.getUint32(off + 2 + n * 12, le);
  }
  if (seen.size === 0) throw new FurError('tiff-decode', `${file}: TIFF holds no image`, { file });
  return le;
}

function isReducedResolution(ifd: Ifd): boolean {
  const t = num(ifd, 't254');
  return t !== undefined && (t & 1) === 1;
}

function pageLayout(ifd: Ifd, fileSize: number, file: string, page: number): PageLayout {
  const unsupported = (what: string): never => {
    throw new FurError('tiff-unsupported', `${file}: page ${page}: ${what}`, { file, page });
  };
  const width = num(ifd, 't256');
  const height = num(ifd, 't257');
  if (!width || !height) return unsupported('no image width/height');
  const spp = num(ifd, 't277') ?? 1;
  const bitsList = nums(ifd, 't258') ?? [1];
  const bits = bitsList[0]!;
  if (!bitsList.every((b) => b === bits)) unsupported(`mixed bits per sample ${bitsList.join('/')}`);
  if (![8, 16, 32, 64].includes(bits)) unsupported(`${bits}-bit samples are not supported (8, 16, 32, 64 are)`);
  const formats = nums(ifd, 't339') ?? [1];
  const format = formats[0]!;
  if (!formats.every((f) => f === format)) unsupported('mixed sample formats');
  const compression = num(ifd, 't259') ?? 1;
  if (!(compression in COMPRESSIONS)) {
    unsupported(`compression ${compression} is not supported (none, LZW, deflate, PackBits are); read it as --format bytes`);
  }
  if ((num(ifd, 't284') ?? 1) === 2 && spp > 1) unsupported('planar (separate-plane) layout is not supported');
  const predictor = num(ifd, 't317') ?? 1;
  if (predictor === 3 || (predictor === 2 && bits > 16)) unsupported(`predictor ${predictor} with ${bits}-bit samples is not supported`);
  const dtype = dtypeOf(format, bits) ?? unsupported(`sample format ${format} with ${bits} bits is not supported`);

  const rowBytes = width * spp * (bits / 8);
  const tiled = ifd['t322'] !== undefined;
  const offsets = nums(ifd, tiled ? 't324' : 't273') ?? [];
  let counts = nums(ifd, tiled ? 't325' : 't279') ?? [];
  if (compression === 1 && !tiled && offsets.length === 1) counts = [rowBytes * height]; // what utif2 reads
  if (offsets.length === 0 || offsets.length !== counts.length) unsupported('missing or inconsistent strip/tile offsets');
  offsets.forEach((o, i) => {
    const end = o + counts[i]!;
    if (!Number.isSafeInteger(end) || end > fileSize) {
      throw new FurError('tiff-truncated',
        `${file}: truncated TIFF (page ${page} image data ends at byte ${end}, file has ${fileSize}); the file may still be being written`,
        { file, page, size: fileSize });
    }
  });
  const bytes = rowBytes * height;
  if (compression === 1 && !tiled && counts.reduce((a, b) => a + b, 0) < bytes) {
    throw new FurError('tiff-truncated', `${file}: page ${page} strips hold fewer bytes than a ${width}x${height} image needs`, { file, page });
  }
  return { dtype, shape: spp === 1 ? [height, width] : [height, width, spp], bytes };
}

/**
 * An uncompressed page whose strips lie back to back is already the frame: view it in place
 * instead of letting utif2 copy it strip by strip (the common case for instrument TIFFs).
 */
function storedContiguously(ifd: Ifd): number | undefined {
  if ((num(ifd, 't259') ?? 1) !== 1 || ifd['t322'] !== undefined) return undefined;
  const offsets = nums(ifd, 't273') ?? [];
  const counts = nums(ifd, 't279') ?? [];
  if (offsets.length === 0) return undefined;
  if (offsets.length > 1) {
    if (counts.length !== offsets.length) return undefined;
    for (let i = 1; i < offsets.length; i++) if (offsets[i] !== offsets[i - 1]! + counts[i - 1]!) return undefined;
  }
  return offsets[0];
}

function decodePage(buf: ArrayBuffer, ifd: Ifd, layout: PageLayout, le: boolean, file: string, page: number): Uint8Array {
  const size = Number(/\d+/.exec(layout.dtype)![0]) / 8;
  const at = storedContiguously(ifd);
  if (at !== undefined && at + layout.bytes <= buf.byteLength) {
    const view = new Uint8Array(buf, at, layout.bytes);
    if (!le && size > 1) swapBytes(view, size); // the buffer is this read's own copy of the file
    return view;
  }
  try {
    withoutConsoleLog(() => UTIF.decodeImage(buf, ifd as never));
  } catch (e) {
    throw new FurError('tiff-decode', `${file}: page ${page} does not decode: ${String(e)}`, { file, page }, { cause: e });
  }
  const data = ifd.data;
  if (!data || data.length < layout.bytes) {
    throw new FurError('tiff-decode', `${file}: page ${page} decoded to ${data?.length ?? 0} bytes, expected ${layout.bytes}`, { file, page });
  }
  const out = data.length === layout.bytes ? data : data.subarray(0, layout.bytes);
  // utif2 converts 16-bit big-endian samples itself (except in DNG files); wider ones are left as stored.
  if (!le && (size > 2 || (size === 2 && ifd['t33422'] !== undefined))) swapBytes(out, size);
  return out;
}

/** utif2 prints progress for tiled images on stdout; the CLI owns stdout. decodeImage is synchronous. */
function withoutConsoleLog(fn: () => void): void {
  const log = console.log;
  console.log = () => {};
  try {
    fn();
  } finally {
    console.log = log;
  }
}

function dtypeOf(format: number, bits: number): NumericDtype | undefined {
  if (format === 3) return ({ 16: 'float16', 32: 'float32', 64: 'float64' } as const)[bits as 16 | 32 | 64];
  if (format === 2) return `int${bits}` as NumericDtype;
  if (format === 1 || format === 4) return `uint${bits}` as NumericDtype;
  return undefined;
}

function nums(ifd: Ifd, tag: string): number[] | undefined {
  const v = ifd[tag];
  if (v === undefined) return undefined;
  return Array.from(v as ArrayLike<number>, Number);
}

function num(ifd: Ifd, tag: string): number | undefined {
  return nums(ifd, tag)?.[0];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
