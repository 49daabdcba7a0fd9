/**
 * A file built locally and stored whole: for destinations that cannot write at an offset (FTP,
 * S3 objects). The HDF5 writer and the pipeline write to it positionally as to any RemoteFile; the
 * bytes collect in memory (and in a local temporary file once they outgrow `memoryLimit`), and
 * `close` hands them to the destination, which uploads them in one sequential stream.
 *
 * This is how `batches`, `files` and the chunk-index sidecars work over FTPS and S3 without the
 * pipeline knowing: only `append` needs a live positional file, and it checks
 * `capabilities.positionalWrite` (false for these destinations).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FurError } from '../errors.js';
import { MemorySink } from '../hdf5/sink.js';
import type { RemoteFile } from './destination.js';
import { fsError } from './file.js';

/** What a staged file holds once closed: read it in pieces or as one stream, then release it. */
export interface StagedContent {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  stream(from?: number): Readable;
  /** free the memory / remove the local temporary file */
  release(): Promise<void>;
}

/**
 * Called by `close`: store the content at the destination. Return 'keep' to take ownership of the
 * content (the caller releases it later); otherwise it is released when this resolves.
 */
export type Store = (content: StagedContent) => Promise<void | 'keep'>;

export interface StagedOptions {
  /** bytes held in memory before spilling to a local temporary file (default 64 MiB) */
  memoryLimit?: number;
}

export class StagedFile implements RemoteFile {
  private mem: MemorySink | undefined = new MemorySink();
  private spill?: { dir: string; path: string; fh: FileHandle; size: number };
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;
  private closed = false;
  /** set once a write went to disk: later writes queue behind it, so they land in order */
  private spilling = false;
  private readonly memoryLimit: number;

  constructor(readonly path: string, private readonly store: Store, opts: StagedOptions = {}) {
    this.memoryLimit = opts.memoryLimit ?? 64 << 20;
  }

  /** Bytes already at the destination, to continue from (openWrite without truncate). */
  async preload(bytes: Uint8Array): Promise<void> {
    await this.write(0, bytes);
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    if (this.failure !== undefined) return rejected(this.failure);
    if (this.closed) return rejected(closedError(this.path));
    if (!this.spilling && offset + data.length <= this.memoryLimit) {
      // copied now: the caller may reuse its buffer once this resolves
      void this.mem!.write(offset, data);
      return Promise.resolve();
    }
    this.spilling = true;
    const copy = data.slice();
    const p = (this.chain = this.chain.then(async () => {
      const s = await this.toDisk();
      let done = 0;
      while (done < copy.length) {
        const { bytesWritten } = await s.fh.write(copy, done, copy.length - done, offset + done);
        done += bytesWritten;
      }
      s.size = Math.max(s.size, offset + copy.length);
    }).catch((e) => { this.failure ??= fsError(e, this.spill?.path ?? tmpdir(), 'stage upload'); throw this.failure; }));
    p.catch(() => {});
    return p;
  }

  private async toDisk(): Promise<NonNullable<StagedFile['spill']>> {
    if (this.spill) return this.spill;
    const dir = await mkdtemp(join(tmpdir(), 'fur-staged-'));
    const path = join(dir, 'data');
    const fh = await open(path, 'w+', 0o600);
    const bytes = this.mem!.bytes();
    if (bytes.length) await fh.write(bytes, 0, bytes.length, 0);
    this.spill = { dir, path, fh, size: bytes.length };
    this.mem = undefined;
    return this.spill;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    await this.flush();
    if (this.mem) return this.mem.read(offset, length);
    const s = this.spill!;
    const end = Math.min(offset + length, s.size);
    const out = new Uint8Array(Math.max(0, end - offset));
    let got = 0;
    while (got < out.length) {
      const { bytesRead } = await s.fh.read(out, got, out.length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return out;
  }

  async size(): Promise<number> {
    await this.flush();
    return this.mem ? this.mem.size() : this.spill!.size;
  }

  async flush(): Promise<void> {
    await this.chain.catch(() => {});
    if (this.failure !== undefined) throw this.failure;
  }

  /** Nothing is at the destination before `close`: a barrier only. */
  async sync(): Promise<void> {
    await this.flush();
  }

  async truncate(size: number): Promise<void> {
    await this.flush();
    if (this.mem) { await this.mem.truncate(size); return; }
    const s = this.spill!;
    await s.fh.truncate(size);
    s.size = Math.min(s.size, size);
  }

  /** Store what was written (unless a write failed), then free it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.chain.catch(() => {});
      if (this.failure !== undefined) throw this.failure;
      const content = this.content();
      let kept = false;
      try {
        kept = (await this.store(content)) === 'keep';
      } catch (e) {
        this.failure ??= e;
        throw e;
      } finally {
        if (!kept) await content.release();
      }
    } finally {
      if (this.failure !== undefined) await this.discard();
    }
  }

  /** Drop what was written without storing it. */
  async discard(): Promise<void> {
    this.closed = true;
    this.mem = undefined;
    const s = this.spill;
    this.spill = undefined;
    if (s) {
      await s.fh.close().catch(() => {});
      await rm(s.dir, { recursive: true, force: true });
    }
  }

  private content(): StagedContent {
    const mem = this.mem;
    const spill = this.spill;
    const size = mem ? mem.bytes().length : spill!.size;
    const bytes = mem?.bytes();
    return {
      size,
      read: async (offset, length) => {
        if (bytes) return bytes.subarray(offset, Math.min(size, offset + length));
        const out = new Uint8Array(Math.max(0, Math.min(size, offset + length) - offset));
        let got = 0;
        while (got < out.length) {
          const { bytesRead } = await spill!.fh.read(out, got, out.length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return out;
      },
      stream: (from = 0) => {
        if (bytes) return Readable.from(chunks(bytes.subarray(from), 1 << 20));
        if (from >= size) return Readable.from([]);
        return createReadStream(spill!.path, { start: from, end: size - 1, highWaterMark: 1 << 20 });
      },
      release: async () => {
        this.mem = undefined;
        if (spill) {
          this.spill = undefined;
          await spill.fh.close().catch(() => {});
          await rm(spill.dir, { recursive: true, force: true });
        }
      },
    };
  }
}

function* chunks(b: Uint8Array, size: number): Generator<Uint8Array> {
  for (let o = 0; o < b.length; o += size) yield b.subarray(o, Math.min(b.length, o + size));
}

function rejected(e: unknown): Promise<void> {
  const p = Promise.reject(e);
  p.catch(() => {});
  return p;
}

function closedError(path: string): FurError<'file-closed'> {
  return new FurError('file-closed', `${path} was used after it was closed (a bug in the caller)`, { path });
}
