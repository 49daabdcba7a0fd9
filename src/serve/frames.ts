/**
 * The frames a live view shows: the last file of each batch, kept by reference (no copy) from the
 * moment the batch takes it until its commit is durable, then offered as the latest committed
 * frame. At most one file per batch in flight is held; the run hands frames over as it does
 * anyway, and nothing here reads them: drawing is the server's, and only when someone looks.
 */
import type { BatchStream, SourceItem } from '../pipeline/batch.js';
import type { CommitResult } from '../pipeline/target.js';
import type { FrameBlock } from '../source/frame.js';
import type { SourceCommitted } from './figures.js';

export interface CommittedFrames {
  /** increases with every commit that brings a frame to show */
  seq: number;
  /** the source file's name */
  name: string;
  block: FrameBlock;
  /** the row of the block's first frame at the destination (append: in the file) */
  firstRow: number;
  /** when the instrument wrote the file, and when its commit was durable (ms since the epoch) */
  writtenAt: number;
  committedAt: number;
  /** the file at the destination after this commit, bytes (where the target says) */
  fileBytes?: number;
}

/** What a run tells a live view (RunSpec.view): two calls, nothing awaited. */
export interface RunView {
  /** a batch starts: its items are followed to keep the last one */
  batch(b: BatchStream): void;
  /** the batch is committed (durably) */
  committed(index: number, r: CommitResult): void;
}

export class FrameTap implements RunView {
  private readonly lastOf = new Map<number, SourceItem>();
  /** each batch in flight: its source files so far (sizes as the instrument wrote them) */
  private readonly taken = new Map<number, SourceCommitted>();
  latest?: CommittedFrames;
  /** the source files whose batches are committed: what the instrument made that is safe */
  readonly source: SourceCommitted = { files: 0, bytes: 0, frames: 0 };
  private seq = 0;

  batch(b: BatchStream): void {
    const items = b.items;
    const lastOf = this.lastOf;
    const taken: SourceCommitted = { files: 0, bytes: 0, frames: 0 };
    this.taken.set(b.index, taken);
    b.items = (async function* () {
      for await (const item of items) {
        lastOf.set(b.index, item);
        taken.files++;
        taken.bytes += item.file.size;
        taken.frames += item.block.count;
        yield item;
      }
    })();
  }

  committed(index: number, r: CommitResult): void {
    const item = this.lastOf.get(index);
    const taken = this.taken.get(index);
    if (taken) {
      this.source.files += taken.files;
      this.source.bytes += taken.bytes;
      this.source.frames += taken.frames;
    }
    // a batch is committed after every earlier one: any kept for those are stale
    for (const m of [this.lastOf, this.taken]) for (const k of m.keys()) if (k <= index) m.delete(k);
    if (!item) return;
    this.latest = {
      seq: ++this.seq, name: item.file.name, block: item.block, firstRow: r.frames - item.block.count,
      writtenAt: item.block.mtimeMs, committedAt: Date.now(), fileBytes: r.fileBytes,
    };
  }
}
