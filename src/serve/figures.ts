/**
 * The progress figures a live view shows, in the shape of the run's progress model snapshot
 * (field for field a subset of it), taken from the run's `status` events: the one place where
 * the view meets the progress model. Rates are measured over the last few seconds of events, so
 * a commit every few seconds reads as a rate, not as a spike and a run of zeros.
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
  /**
   * watch: how fast the instrument completes files (source bytes/s and frames/s), and whether fur
   * keeps up (commits source bytes as fast; behindBy: source bytes/s it does not)
   */
  instrument?: { rate: number; fps: number; keepingUp: boolean; behindBy: number };
  /** the source folder's file system: free bytes, and when it fills at the present rates */
  disk?: { free: number; fullInSec?: number };
  reconnects: number;
  /** --bwlimit in force, bytes/s */
  limit?: number;
}

type Status = Extract<RunEvent, { type: 'status' }>;

/** The source files committed so far (the frame tap counts them as their batches commit). */
export interface SourceCommitted { files: number; bytes: number; frames: number }

/** rates are taken over this long */
export const WINDOW_SEC = 5;

interface Sample { at: number; wire: number; sourceBytes: number; sourceFrames: number; committedSource: number }

/** Figures from successive status events. */
export class FigureReader {
  private readonly samples: Sample[] = [];

  /**
   * `source`: what the frame tap counted as committed; `framesPerFile`: of the latest file (the
   * backlog's files are not read yet); `instrument`: a capture in progress (watch) rather than a
   * finished one listed at the start.
   */
  read(e: Status, reconnects: number, kept: number, source: SourceCommitted, framesPerFile: number, instrument: boolean): Figures {
    // everything the instrument completed: committed, or waiting in the backlog
    const s: Sample = {
      at: e.elapsedSec, wire: e.bytes, committedSource: source.bytes,
      sourceBytes: source.bytes + e.backlogBytes, sourceFrames: e.frames + e.backlogFiles * framesPerFile,
    };
    const samples = this.samples;
    if (samples.length && s.at <= samples[samples.length - 1]!.at) samples.pop();
    samples.push(s);
    while (samples.length > 2 && s.at - samples[1]!.at >= WINDOW_SEC) samples.shift();
    const first = samples[0]!;
    const dt = s.at - first.at;
    const per = (v: number) => (dt > 0 ? Math.max(0, v) / dt : 0);
    const current = per(s.wire - first.wire);
    const made = per(s.sourceBytes - first.sourceBytes);
    const stored = per(s.committedSource - first.committedSource);
    return {
      elapsedSec: e.elapsedSec,
      files: { seen: e.files + e.backlogFiles, committed: e.files, kept },
      frames: { seen: e.frames, committed: e.frames },
      bytes: { sent: e.bytes, committed: e.bytes },
      rate: { current: Math.round(current), average: Math.round(e.mbPerSec * 1e6) },
      ...(e.etaSec === null ? {} : { etaSec: e.etaSec }),
      backlog: { files: e.backlogFiles, bytes: e.backlogBytes },
      ...(instrument && dt > 0 ? {
        instrument: {
          rate: Math.round(made), fps: Number(per(s.sourceFrames - first.sourceFrames).toFixed(2)),
          // keeping up: the backlog is not growing over the window (a batch in flight is not falling behind)
          keepingUp: s.sourceBytes - s.committedSource <= first.sourceBytes - first.committedSource || made <= stored,
          behindBy: Math.round(Math.max(0, made - stored)),
        },
      } : {}),
      reconnects,
    };
  }
}
