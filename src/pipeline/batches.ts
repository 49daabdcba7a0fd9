/**
 * The `batches` method: each batch becomes its own HDF5 file, written under a temporary name and
 * renamed into place once complete and durable. A batch file is named after its first source
 * file, so a restarted run recognises what it already stored.
 */
import { posix } from 'node:path';
import { FurError, isFurError } from '../errors.js';
import { H5File } from '../hdf5/index.js';
import type { Destination } from '../transport/destination.js';
import { buildReferences, type References } from '../index/kerchunk.js';
import { fileUrl, putSidecar, sidecarPath } from '../index/sidecar.js';
import { FUR_VERSION } from '../version.js';
import type { Batch } from './batch.js';
import { appendBlocks, createFrameDatasets, framesPath, furMethod, readCommitted } from './layout.js';
import type { PipelineOptions } from './options.js';
import type { CollectingTarget, CommitResult } from './target.js';

export const TEMP_SUFFIX = '.fur-partial';

/** what reading a file that is not fur's HDF5 (or is damaged) fails with */
const UNREADABLE = new Set(['hdf5-format', 'hdf5-usage', 'checksum-mismatch']);

/** How far a run is in reading the batch files a destination holds. */
export interface ScanProgress { done: number; total: number }

export function batchFileName(firstSource: string): string {
  return `${firstSource.replace(/\.[^.]*$/, '')}.h5`;
}

export class BatchesTarget implements CollectingTarget {
  readonly committed = new Map<string, number>();
  /** batch files written at once: each is its own file, so their round trips overlap */
  readonly concurrency = 3;
  readonly hashes = new Map<string, Uint8Array[]>();
  private frames = 0;

  private constructor(private dest: Destination, private dir: string, private o: PipelineOptions) {}

  /** `onScan` hears of each file read while the run reads what is stored */
  static async open(dest: Destination, dir: string, o: PipelineOptions, onScan?: (s: ScanProgress) => void): Promise<BatchesTarget> {
    const t = new BatchesTarget(dest, dir, o);
    await dest.mkdirp(dir);
    await t.scan(onScan);
    return t;
  }

  /** what earlier runs committed: the frame names inside each finished batch file */
  private async scan(onScan?: (s: ScanProgress) => void): Promise<void> {
    const names = await this.dest.list(this.dir);
    const listed = new Set(names);
    // an interrupted batch or sidecar (TEMP_SUFFIX) is not one: the run sweeps those (sweep.ts)
    const todo = names.filter((n) => n.endsWith('.h5'));
    const progress: ScanProgress = { done: 0, total: todo.length };
    // a new destination: nothing to read, nothing to tell
    if (todo.length) onScan?.({ ...progress });
    for (const name of todo) {
      await this.scanOne(name, listed);
      progress.done++;
      onScan?.({ ...progress });
    }
  }

  /** One batch file of the listing: its frames are counted as committed. */
  private async scanOne(name: string, listed: Set<string>): Promise<void> {
    const path = posix.join(this.dir, name);
    const remote = await this.dest.openRead(path);
    let refs: References | undefined;
    try {
      const file = await H5File.open(remote);
      const frames = framesPath(file, this.o.dataset);
      if (await furMethod(file) !== 'batches' || !file.has(frames)) return;
      const rows = file.dataset(frames).shape[0];
      await readCommitted(file, this.o.dataset, rows, this.committed, this.hashes);
      this.frames += rows;
      // a run stopped between a batch's rename and its sidecar left the batch without one
      if (!listed.has(posix.basename(sidecarPath(path)))) refs = await buildReferences(file, fileUrl(this.dest, path));
    } catch (e) {
      // a file that does not read as fur's HDF5 is not one of ours: left alone. A read that
      // failed (a lost connection) says nothing about what is stored: taken for "not ours",
      // its frames would be sent again and its name found taken
      if (isFurError(e) && !UNREADABLE.has(e.tag)) throw e;
    } finally {
      await remote.close().catch(() => undefined);
    }
    if (refs) await putSidecar(this.dest, path, refs);
  }

  async commit(batch: Batch): Promise<CommitResult> {
    // several batches commit at once and may end in any order; their results are taken in batch
    // order, so the total of frames is counted in that order, when the commit starts
    this.frames += batch.frames;
    const total = this.frames;
    const first = batch.items[0].block;
    const final = posix.join(this.dir, batchFileName(first.name));
    const temp = final + TEMP_SUFFIX;
    if (await this.dest.stat(final)) {
      throw new FurError('exists', `${this.dest.url}: ${final} already exists and holds other frames; move it away or upload to a new folder`, { path: final });
    }
    const remote = await this.dest.openWrite(temp, { truncate: true, bulk: true });
    const file = await H5File.create(remote, { durable: false, metaReserve: 64 << 10 });
    file.setAttr('/', 'fur_version', FUR_VERSION);
    file.setAttr('/', 'fur_method', 'batches');
    const ds = createFrameDatasets(file, { dtype: first.dtype, shape: first.shape, encoding: first.encoding }, this.o);
    const bytes = await appendBlocks(ds, batch.items.map((i) => i.block));
    await file.commit();
    // the chunk index refers to the final name; it is written once that name exists
    const refs = await buildReferences(file, fileUrl(this.dest, final));
    // nothing reads the temporary file, so only its final state needs to be durable
    await file.close({ sync: this.dest.capabilities.fsync });
    await this.dest.rename(temp, final);
    await putSidecar(this.dest, final, refs);
    return { frames: total, bytes, stored: { path: final, rows: [0, batch.frames] } };
  }

  async close(): Promise<void> {}
}
