/**
 * Where the HDF5 writer puts bytes. The writer never does I/O of its own: it hands positioned
 * byte ranges to a Sink, so the same writer serves a local file, an SFTP handle, memory or a
 * multipart object.
 *
 * Contract:
 * - `write` may be called many times without awaiting; the sink may complete writes in any
 *   order, but a write's promise settles only once the destination acknowledged it.
 * - `flush` resolves when every write issued before it is acknowledged (a barrier).
 * - `sync`, where offered, is that barrier and also makes those writes durable (fsync): it
 *   follows every write issued before it, so it may be called without waiting for them.
 * - The writer orders commits with barriers: data → index → EOF → object header.
 */
export interface Sink {
  write(offset: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  sync?(): Promise<void>;
  /** cut the file to `size` bytes, where the destination can */
  truncate?(size: number): Promise<void>;
  /**
   * truncate, make that durable when `durable`, and close, where the destination can send them
   * one behind the other and so spend one round trip on all three (SFTP on one channel)
   */
  truncateAndClose?(size: number, durable: boolean): Promise<void>;
  close(): Promise<void>;
}

/** A sink that can also read back what is stored (needed to reopen a file and append). */
export interface RandomAccess extends Sink {
  read(offset: number, length: number): Promise<Uint8Array>;
  size(): Promise<number>;
}

/** An in-memory file; the writer's tests and the S3 append path build on it. */
export class MemorySink implements RandomAccess {
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  writes = 0;

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.writes++;
    const end = offset + data.length;
    if (end > this.buf.length) {
      let cap = this.buf.length;
      while (cap < end) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(data, offset);
    if (end > this.len) this.len = end;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.len);
    return this.buf.slice(offset, Math.max(offset, end));
  }
  async size(): Promise<number> { return this.len; }
  async flush(): Promise<void> {}
  async sync(): Promise<void> {}
  async truncate(size: number): Promise<void> { this.len = Math.min(this.len, size); }
  async close(): Promise<void> {}
  bytes(): Uint8Array { return this.buf.slice(0, this.len); }
}
