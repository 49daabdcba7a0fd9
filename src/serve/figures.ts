/**
 * The progress figures a live view shows, in the shape of the run's progress model snapshot
 * (field for field a subset of it), taken from the run's `status` events: the one place where
 * the view meets the progress model. The upload's rates are the model's; the instrument's are
 * measured over the last few seconds of events, so a file completed every few seconds reads as
 * a rate, not as a spike and a run of zeros.
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

interface Sample { at: number; sourceBytes: number; sourceFrames: number; committedSource: number }

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
      at: e.elapsedSec, committedSource: source.bytes,
      sourceBytes: source.bytes + e.backlog.bytes, sourceFrames: e.frames.committed + e.backlog.files * framesPerFile,
    };
    const samples = this.samples;
    if (samples.length && s.at <= samples[samples.length - 1]!.at) samples.pop();
    samples.push(s);
    while (samples.length > 2 && s.at - samples[1]!.at >= WINDOW_SEC) samples.shift();
    const first = samples[0]!;
    const dt = s.at - first.at;
    const per = (v: number) => (dt > 0 ? Math.max(0, v) / dt : 0);
    const made = per(s.sourceBytes - first.sourceBytes);
    const stored = per(s.committedSource - first.committedSource);
    return {
      elapsedSec: e.elapsedSec,
      files: { seen: e.files.seen, committed: e.files.committed, kept, ...(e.files.total === undefined ? {} : { total: e.files.total }) },
      frames: { ...e.frames },
      bytes: { sent: e.bytes.sent, committed: e.bytes.committed, ...(e.bytes.total === undefined ? {} : { total: e.bytes.total }) },
      ...(e.percent === undefined ? {} : { percent: e.percent }),
      // the model's rates: of bytes leaving for the destination, so they move while a batch is on the wire
      rate: { ...e.rate },
      ...(e.etaSec === undefined ? {} : { etaSec: e.etaSec }),
      backlog: { ...e.backlog },
      ...(instrument && dt > 0 ? {
        instrument: {
          rate: Math.round(made), fps: Number(per(s.sourceFrames - first.sourceFrames).toFixed(2)),
          // keeping up: the backlog is not growing over the window (a batch in flight is not falling behind)
          keepingUp: s.sourceBytes - s.committedSource <= first.sourceBytes - first.committedSource || made <= stored,
          behindBy: Math.round(Math.max(0, made - stored)),
        },
      } : {}),
      reconnects,
      ...(e.limit === undefined ? {} : { limit: e.limit }),
    };
  }
}
