/**
 * Where a run's output goes, whatever the method: `commit(batch)` makes the batch's frames
 * durable at the destination, and only then may its source files be deleted. `committed`
 * tells a restarted run which source files are already stored.
 */
import type { Batch, BatchStream, SourceItem } from './batch.js';
import type { StoredRows } from './readback.js';

export interface CommitResult {
  /** frames committed so far in total */
  frames: number;
  /** bytes written to the destination for this batch */
  bytes: number;
  /** the file the batch went into, bytes, after this commit (where the target knows it cheaply) */
  fileBytes?: number;
  /** where the batch's frames are, to read them back where a commit is not durable (cleanup.ts) */
  stored?: StoredRows;
}

interface TargetBase {
  /** source file name → frames committed from it (read from the destination at start) */
  readonly committed: Map<string, number>;
  /** source file name → SHA-256 of each committed frame, by page (files from before hashes were kept have none) */
  readonly hashes: Map<string, Uint8Array[]>;
  close(): Promise<void>;
  /**
   * Commits that may be in flight at once (default 1): the run hands over the next batch while
   * earlier commits still run, and takes their results in order.
   */
  readonly concurrency?: number;
  /**
   * Frames per batch for batches starting with this item, when the target commits sooner than
   * --batch says (append: a commit's bytes are bounded, so sources go sooner and a crash redoes
   * less); absent: --batch.
   */
  batchFrames?(first: SourceItem): number;
}

/** A target that takes a batch once all its frames are read (a file or an upload per batch). */
export interface CollectingTarget extends TargetBase {
  commit(batch: Batch): Promise<CommitResult>;
}

/**
 * A target that stores frames as they are read (append): the run holds no batch in memory. It
 * takes every item of the stream, which ends the batch.
 */
export interface StreamingTarget extends TargetBase {
  commitStream(batch: BatchStream): Promise<CommitResult>;
}

export type Target = CollectingTarget | StreamingTarget;
