/**
 * Deleting local sources — only ever for files whose frames are committed at the destination,
 * and where the destination cannot make a commit durable, only once they read back intact.
 */
import { rm, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { FurError } from '../errors.js';
import type { CompletedFile } from '../source/watch.js';
import type { Destination } from '../transport/destination.js';
import type { PipelineOptions } from './options.js';
import { CommittedFrames, intactInBatch, sameFile, unreadable, type StoredRows } from './readback.js';

export async function deleteSources(files: CompletedFile[], warn: (message: string) => void): Promise<number> {
  let n = 0;
  for (const f of files) {
    try {
      // what was committed is the file as fur read it: one that grew or was rewritten since (an
      // instrument that paused mid-file longer than the quiet period) holds bytes not committed
      const now = await stat(f.path);
      if (now.size !== f.size || now.mtimeMs !== f.mtimeMs || (f.ino !== undefined && now.ino !== f.ino)) {
        warn(`${f.path}: committed, but changed since it was read (${f.size} → ${now.size} bytes); kept`);
        continue;
      }
      await rm(f.path);
      n++;
      if (f.marker) await rm(f.marker, { force: true });
    } catch (e) {
      // the frames are safe remotely; a file we cannot delete only costs local space
      warn(`${f.path}: committed but not deleted (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  return n;
}

/**
 * Why a commit at this destination may be lost by a crash of the server, or undefined where it
 * cannot (a synced file, an object store's acknowledged upload).
 */
export function unsyncedReason(dest: Destination): string | undefined {
  if (dest.capabilities.fsync || dest.capabilities.durableWrites) return undefined;
  if (dest.url.startsWith('sftp:')) return 'the server does not offer fsync@openssh.com';
  if (dest.url.startsWith('ftps:')) return 'FTP has no fsync';
  return 'it cannot sync a file';
}

/** The one line a run starts with where commits cannot be made durable, or undefined. */
export function unsyncedNotice(dest: Destination, o: PipelineOptions): string | undefined {
  const why = unsyncedReason(dest);
  if (why === undefined) return undefined;
  const head = `${dest.url}: a commit cannot be made durable here (${why}), so a crash of the server may lose it`;
  if (!o.deleteSource) return `${head}; the sources stay (no --delete-source)`;
  if (o.deleteUnsynced) return `${head}; --delete-unsynced: sources are deleted once committed, without reading their frames back`;
  return `${head}; a source is deleted only once its frames read back intact from the server (--delete-unsynced skips that)`;
}

/**
 * Deletes the sources of what a run committed (--delete-source). Where commits are durable, every
 * committed source. Elsewhere only those whose frames read back from the server and match their
 * recorded SHA-256 (for --method files: the stored file equals the source), unless
 * --delete-unsynced accepts the risk; a source that does not read back intact is kept and reported.
 */
export class SourceCleanup {
  /** sources are read back before they are deleted */
  readonly readBack: boolean;
  private committedBefore?: CommittedFrames;

  constructor(
    private readonly dest: Destination,
    private readonly destPath: string,
    private readonly o: PipelineOptions,
    private readonly warn: (message: string) => void,
    /** a source kept because its frames did not read back intact */
    private readonly keep: (file: CompletedFile, error: FurError) => void,
  ) {
    this.readBack = o.deleteSource && !o.deleteUnsynced && unsyncedReason(dest) !== undefined;
  }

  /** The sources of a committed batch, whose frames are rows `stored` of a file at the destination. */
  async batch(files: CompletedFile[], stored: StoredRows | undefined): Promise<number> {
    if (!this.readBack) return deleteSources(files, this.warn);
    if (!stored) return this.deleteIntact(files, () => false, `its frames cannot be read back from ${this.dest.url}`);
    let intact: Set<string>;
    try {
      intact = await intactInBatch(this.dest, stored, this.o.dataset);
    } catch (e) {
      // the file does not read back at all: its sources stay, and the capture goes on
      if (!unreadable(e)) throw e;
      return this.deleteIntact(files, () => false, `${stored.path} does not read back from ${this.dest.url} (${(e as Error).message})`);
    }
    return this.deleteIntact(files, (f) => intact.has(f.name), `its frames read back from ${this.dest.url} differ from what was sent`);
  }

  /** A file the `files` method stored under its own name in the destination folder. */
  async file(f: CompletedFile): Promise<number> {
    if (!this.readBack) return deleteSources([f], this.warn);
    const same = await sameFile(this.dest, posix.join(this.destPath, f.name), f.path);
    return this.deleteIntact([f], () => same, `the copy read back from ${this.dest.url} differs from it`);
  }

  /**
   * Sources an earlier run committed, found at the start of this one. For --method files the run
   * compared the stored file with the source already.
   */
  async earlier(files: CompletedFile[]): Promise<number> {
    if (!this.readBack || this.o.method === 'files') return deleteSources(files, this.warn);
    this.committedBefore ??= new CommittedFrames(this.dest, this.o.method, this.destPath, this.o.dataset);
    const intact = await this.committedBefore.intact(files.map((f) => f.name));
    return this.deleteIntact(files, (f) => intact.has(f.name), `its frames read back from ${this.dest.url} differ from what was sent`);
  }

  /** lets go of the files opened to read earlier runs' frames back */
  async close(): Promise<void> {
    await this.committedBefore?.close();
  }

  /** Deletes the sources that read back intact; the others are kept, `why` said of each. */
  private async deleteIntact(files: CompletedFile[], intact: (f: CompletedFile) => boolean, why: string): Promise<number> {
    for (const f of files.filter((f) => !intact(f))) {
      this.keep(f, new FurError('read-back-differs', `${f.path}: ${why}, so it is not deleted; fur verify SRC DEST shows what differs`, { file: f.path }));
    }
    return deleteSources(files.filter(intact), this.warn);
  }
}
