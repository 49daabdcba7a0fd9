/**
 * Reading a remote object that is fetched by byte range (S3 GET with Range, FTPS REST + RETR):
 * a reader of HDF5 structure asks for many small pieces near each other, so small reads share
 * cached 1 MiB windows (the windows a read lacks come in one request, even across a boundary);
 * large reads (chunks) go straight through, and the last one is kept: a reader that takes a
 * chunk's frames one at a time (`fur verify` against the sources) reads each chunk once, not once
 * per frame.
 */
import { FurError } from '../errors.js';
import type { RemoteFile } from './destination.js';

const READ_WINDOW = 1 << 20;

export class WindowedReadFile implements RemoteFile {
  private cache = new Map<number, Uint8Array>();
  /** the last large read: where it starts, and its bytes */
  private last?: { offset: number; bytes: Uint8Array };
  private closed = false;

  constructor(readonly path: string, private readonly length: number, private readonly fetch: (offset: number, length: number) => Promise<Uint8Array>) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new FurError('file-closed', `${this.path} was used after it was closed (a bug in the caller)`, { path: this.path });
    const end = Math.min(offset + length, this.length);
    if (end <= offset) return new Uint8Array(0);
    // large reads go straight through; small ones (HDF5 structure) share 1 MiB windows
    if (end - offset >= READ_WINDOW) {
      const held = this.last;
      // a copy: the caller may change what it is given
      if (held && offset >= held.offset && end <= held.offset + held.bytes.length) return held.bytes.slice(offset - held.offset, end - held.offset);
      const got = await this.fetch(offset, end - offset);
      this.last = { offset, bytes: got.slice() };
      return got;
    }
    const first = Math.floor(offset / READ_WINDOW);
    const last = Math.floor((end - 1) / READ_WINDOW);
    // the windows not yet held come in one request, even when the read straddles a boundary
    const missing = [];
    for (let w = first; w <= last; w++) if (!this.cache.has(w)) missing.push(w);
    if (missing.length) {
      const lo = missing[0]! * READ_WINDOW;
      const hi = Math.min(this.length, (missing[missing.length - 1]! + 1) * READ_WINDOW);
      const got = await this.fetch(lo, hi - lo);
      for (const w of missing) {
        // the oldest window this read does not need makes room (one it needs may be the oldest)
        if (this.cache.size >= 32) {
          for (const k of this.cache.keys()) if (k < first || k > last) { this.cache.delete(k); break; }
        }
        this.cache.set(w, got.subarray(w * READ_WINDOW - lo, Math.min(hi, (w + 1) * READ_WINDOW) - lo));
      }
    }
    const out = new Uint8Array(end - offset);
    for (let w = first; w <= last; w++) {
      const block = this.cache.get(w)!;
      const lo = Math.max(offset, w * READ_WINDOW);
      const hi = Math.min(end, (w + 1) * READ_WINDOW);
      out.set(block.subarray(lo - w * READ_WINDOW, hi - w * READ_WINDOW), lo - offset);
    }
    return out;
  }

  async size(): Promise<number> { return this.length; }
  write(): Promise<void> {
    return Promise.reject(new FurError('read-only', `${this.path} is open for reading only (a bug in the caller)`, { path: this.path }));
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> { this.closed = true; this.cache.clear(); this.last = undefined; }
}
