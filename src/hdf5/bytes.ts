/** Little-endian byte encoding helpers shared by every on-disk structure. */

export const UNDEF_ADDR = Number.MAX_SAFE_INTEGER; // stands for 0xffffffffffffffff in memory

/** Growable little-endian writer for building metadata blocks. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf);
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): this { this.ensure(1); this.view.setUint8(this.pos, v); this.pos += 1; return this; }
  u16(v: number): this { this.ensure(2); this.view.setUint16(this.pos, v, true); this.pos += 2; return this; }
  u32(v: number): this { this.ensure(4); this.view.setUint32(this.pos, v >>> 0, true); this.pos += 4; return this; }
  /** 8-byte unsigned; UNDEF_ADDR encodes as all ones (HDF5's undefined address). */
  u64(v: number): this {
    this.ensure(8);
    if (v === UNDEF_ADDR) {
      this.view.setUint32(this.pos, 0xffffffff, true);
      this.view.setUint32(this.pos + 4, 0xffffffff, true);
    } else {
      this.view.setUint32(this.pos, v % 0x100000000, true);
      this.view.setUint32(this.pos + 4, Math.floor(v / 0x100000000), true);
    }
    this.pos += 8;
    return this;
  }
  /** unsigned integer of `width` bytes (1, 2, 4 or 8) */
  uint(v: number, width: number): this {
    switch (width) {
      case 1: return this.u8(v);
      case 2: return this.u16(v);
      case 4: return this.u32(v);
      case 8: return this.u64(v);
      default: throw new RangeError(`unsupported integer width ${width}`);
    }
  }
  bytes(b: Uint8Array): this { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; return this; }
  zeros(n: number): this { this.ensure(n); this.buf.fill(0, this.pos, this.pos + n); this.pos += n; return this; }
  ascii(s: string): this { for (let i = 0; i < s.length; i++) this.u8(s.charCodeAt(i)); return this; }
  /** patch a u32 at an earlier position */
  setU32(at: number, v: number): void { this.view.setUint32(at, v >>> 0, true); }
  setU16(at: number, v: number): void { this.view.setUint16(at, v, true); }
  finish(): Uint8Array { return this.buf.slice(0, this.pos); }
}

/** Bounds-checked little-endian reader; `what` names the structure in errors. */
export class ByteReader {
  private view: DataView;
  pos: number;
  constructor(readonly buf: Uint8Array, pos = 0, readonly what = 'HDF5 structure') {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = pos;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new RangeError(`${this.what}: truncated (need ${n} bytes at ${this.pos}, have ${this.buf.length})`);
    }
  }
  u8(): number { this.need(1); return this.view.getUint8(this.pos++); }
  u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  u64(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (lo === 0xffffffff && hi === 0xffffffff) return UNDEF_ADDR;
    return hi * 0x100000000 + lo;
  }
  uint(width: number): number {
    switch (width) {
      case 1: return this.u8();
      case 2: return this.u16();
      case 4: return this.u32();
      case 8: return this.u64();
      default: throw new RangeError(`unsupported integer width ${width}`);
    }
  }
  bytes(n: number): Uint8Array { this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  ascii(n: number): string { return String.fromCharCode(...this.bytes(n)); }
  skip(n: number): void { this.need(n); this.pos += n; }
  get remaining(): number { return this.buf.length - this.pos; }
}

/** smallest byte width (1, 2, 4, 8) that holds v */
export function widthFor(v: number): 1 | 2 | 4 | 8 {
  if (v < 0x100) return 1;
  if (v < 0x10000) return 2;
  if (v < 0x100000000) return 4;
  return 8;
}

export function pad8(n: number): number { return (n + 7) & ~7; }
