/**
 * File space: metadata (object headers, index nodes, small heaps) goes into a region near the
 * front of the file so a remote reader finds the whole structure in one or two range requests;
 * raw data (chunks, vlen heaps) is appended after it. When the metadata region is full, a new one
 * twice as large is opened at the end of the data.
 */
export class Allocator {
  constructor(
    /** next free byte for data; everything allocated lies below it, so it is the file's EOF */
    public end: number,
    private metaCursor: number,
    private metaEnd: number,
    private metaRegionSize: number,
  ) {}

  meta(size: number): number {
    const need = (size + 7) & ~7;
    if (this.metaCursor + need > this.metaEnd) {
      this.metaRegionSize = Math.max(this.metaRegionSize * 2, need);
      this.metaCursor = this.end;
      this.metaEnd = this.end + this.metaRegionSize;
      this.end = this.metaEnd;
    }
    const at = this.metaCursor;
    this.metaCursor += need;
    return at;
  }

  data(size: number): number {
    const at = this.end;
    this.end += size;
    return at;
  }

  /** the metadata region in use: its next free byte, its end and its size */
  metaState(): { cursor: number; end: number; regionSize: number } {
    return { cursor: this.metaCursor, end: this.metaEnd, regionSize: this.metaRegionSize };
  }

  static resume(end: number, meta: { cursor: number; end: number; regionSize: number }): Allocator {
    return new Allocator(end, meta.cursor, meta.end, meta.regionSize);
  }
}
