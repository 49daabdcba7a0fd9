/**
 * Where a run's frames come from, when not from a folder of files: frames pushed from memory by a
 * program (the library's openCapture), or received from a detector's stream. The run commits them
 * as it commits a folder's files — same batches, same targets, same resume — and tells the source
 * when they are durable, so it can let go of what it held (a pushed frame has no file to delete).
 */
import type { SourceItem } from './batch.js';
import type { Progress } from './progress.js';
import type { Target } from './target.js';

/**
 * What one unit of frames came from: a completed file (its path, deleted once committed when
 * asked), or frames pushed from memory (no path). A unit is committed, and released, as a whole.
 */
export interface Origin {
  name: string;
  /** bytes it held (for progress and read-ahead) */
  size: number;
  path?: string;
  marker?: string;
}

export interface FrameSource {
  /** what the run's start event names as its source */
  readonly label: string;
  /**
   * The frames to commit, in order, once the target is open (`target.committed` says what the
   * destination holds already: none of it comes again). A run that failed and reconnects asks
   * again, and gets again everything not yet released.
   */
  items(target: Target, progress: Progress): AsyncIterable<SourceItem>;
  /** These units' commit is durable at the destination: what held them locally may go. */
  release(units: Origin[]): Promise<void>;
  /** why the source ended ('finished' unless it says otherwise) */
  readonly endReason?: string;
  /** frames per batch at most, for a source that holds what it has not released in memory */
  batchLimit?(first: SourceItem): number;
}
