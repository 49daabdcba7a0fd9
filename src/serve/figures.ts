/**
 * The progress figures a live view shows, in the shape of the run's progress model snapshot
 * (field for field a subset of it), taken from the run's `status` events: the one place where
 * the view meets the progress model.
 */
import type { RunEvent } from '../pipeline/progress.js';

export interface Figures {
  elapsedSec: number;
  files: { seen: number; committed: number; kept: number; total?: number };
  frames: { seen: number; committed: number; total?: number };
  /** sent: left for the destination; committed: written by commits; total: of the source, when known */
  bytes: { sent: number; committed: number; total?: number };
  percent?: number;
  /** bytes/s leaving for the destination: recently, and since the start */
  rate: { current: number; average: number };
  etaSec?: number;
  /** local files waiting to be committed */
  backlog: { files: number; bytes: number };
  /** watch: how fast the instrument writes (bytes/s), and whether fur keeps up */
  instrument?: { rate: number; keepingUp: boolean; behindBy: number };
  /** the source folder's file system: free bytes, and when it fills at the present rates */
  disk?: { free: number; fullInSec?: number };
  reconnects: number;
  /** --bwlimit in force, bytes/s */
  limit?: number;
}

type Status = Extract<RunEvent, { type: 'status' }>;

/** Figures from successive status events (the upload rate from the committed bytes between two). */
export class FigureReader {
  private last?: { at: number; bytes: number };
  private current = 0;

  read(e: Status, reconnects: number, kept: number): Figures {
    if (this.last && e.elapsedSec > this.last.at) this.current = (e.bytes - this.last.bytes) / (e.elapsedSec - this.last.at);
    this.last = { at: e.elapsedSec, bytes: e.bytes };
    return {
      elapsedSec: e.elapsedSec,
      files: { seen: e.files + e.backlogFiles, committed: e.files, kept },
      frames: { seen: e.frames, committed: e.frames },
      bytes: { sent: e.bytes, committed: e.bytes },
      rate: { current: Math.round(this.current), average: Math.round(e.mbPerSec * 1e6) },
      ...(e.etaSec === null ? {} : { etaSec: e.etaSec }),
      backlog: { files: e.backlogFiles, bytes: e.backlogBytes },
      reconnects,
    };
  }
}
