/**
 * A read-only view of a remote file fetched by range requests, as few as possible: fetched ranges
 * are kept and reused, nearby requests are merged, and every request is counted so `fur get
 * --stats` can say what a read cost.
 */
import type { RandomAccess } from '../hdf5/index.js';

export type FetchRange = (offset: number, length: number) => Promise<Uint8Array>;

export interface FetchStats { requests: number; bytes: number }

/** two wanted ranges closer than this are fetched as one: a request costs more than the gap */
export const MERGE_GAP = 64 << 10;

export class RangeCache implements RandomAccess {
  readonly stats: FetchStats = { requests: 0, bytes: 0 };
  private blocks: { start: number; data: Uint8Array }[] = [];

  constructor(private fetchRange: FetchRange, private fileSize: number) {}

  async size(): Promise<number> { return this.fileSize; }

  /** store bytes obtained elsewhere (e.g. the first response, which also told the size) */
  keep(start: number, data: Uint8Array): void {
    this.blocks.push({ start, data });
    this.blocks.sort((a, b) => a.start - b.start);
  }

  private covered(offset: number, length: number): Uint8Array | undefined {
    for (const b of this.blocks) {
      if (b.start <= offset && offset + length <= b.start + b.data.length) return b.data.subarray(offset - b.start, offset - b.start + length);
    }
    return undefined;
  }

  private async fetch(offset: number, length: number): Promise<void> {
    this.stats.requests++;
    const data = await this.fetchRange(offset, length);
    this.stats.bytes += data.length;
    this.keep(offset, data);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    length = Math.max(0, Math.min(length, this.fileSize - offset));
    const hit = this.covered(offset, length);
    if (hit) return hit;
    // metadata reads are small and clustered: fetch a little more than asked
    await this.fetch(offset, Math.min(this.fileSize - offset, Math.max(length, MERGE_GAP)));
    return this.covered(offset, length) ?? new Uint8Array(0);
  }

  /** fetch several ranges, merging those closer than MERGE_GAP; or the whole file when that is most of it */
  async prefetch(ranges: { offset: number; length: number }[], wholeFileRatio = 0.5): Promise<void> {
    const wanted = ranges.filter((r) => r.length > 0 && !this.covered(r.offset, r.length)).sort((a, b) => a.offset - b.offset);
    if (!wanted.length) return;
    const total = wanted.reduce((n, r) => n + r.length, 0);
    if (total >= this.fileSize * wholeFileRatio) { await this.fetch(0, this.fileSize); return; }
    const merged: { offset: number; end: number }[] = [];
    for (const r of wanted) {
      const last = merged[merged.length - 1];
      if (last && r.offset - last.end <= MERGE_GAP) last.end = Math.max(last.end, r.offset + r.length);
      else merged.push({ offset: r.offset, end: r.offset + r.length });
    }
    await Promise.all(merged.map((m) => this.fetch(m.offset, m.end - m.offset)));
  }

  async write(): Promise<void> { throw new Error('read-only'); }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
