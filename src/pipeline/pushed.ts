/**
 * Frames handed to fur by a program (openCapture) or a stream receiver, rather than read from a
 * folder. Each is held until its commit is durable: a run that loses its destination and
 * reconnects sends again whatever was not committed, as a folder run reads its files again. What
 * is held in memory is bounded: `push` resolves only once there is room, which is how a producer
 * faster than the destination is slowed down (back-pressure) instead of fur's memory growing.
 */
import { FurError } from '../errors.js';
import type { FrameBlock } from '../source/frame.js';
import type { SourceItem } from './batch.js';
import type { Progress } from './progress.js';
import { unsafeName } from './run.js';
import type { FrameSource, Origin } from './source.js';
import type { Target } from './target.js';

/** One unit of pushed frames: in memory, or (a stream's spool) in a local file until wanted. */
export interface Pushed {
  name: string;
  /** bytes of frame data */
  size: number;
  /** the frames, while held in memory */
  block?: FrameBlock;
  /** the frames, read back from where they were set aside */
  load?: () => Promise<FrameBlock>;
  /** once committed: e.g. remove a spool file */
  release?: () => Promise<void>;
}

interface Entry { origin: Origin; unit: Pushed }

export class PushedFrames implements FrameSource {
  /** names the destination holds: learned when it opens, and every name committed since */
  readonly committed = new Set<string>();
  private readonly pending: Entry[] = [];
  /** units released so far: pending[0] is the unit pushed after them */
  private released = 0;
  /** names pushed and not yet committed */
  private readonly pushing = new Set<string>();
  /** bytes of frames held in memory */
  private held = 0;
  private ended = false;
  private failure: unknown;
  private wakeConsumer?: () => void;
  private roomWaiters: (() => void)[] = [];
  private resolveOpened!: () => void;
  /** the destination is open and `committed` says what it holds */
  readonly opened = new Promise<void>((resolve) => { this.resolveOpened = resolve; });

  /** `maxHeldBytes`: frames held in memory (pushed and not yet committed) before push waits. */
  constructor(readonly label: string, readonly maxHeldBytes: number, private readonly onReleased?: (names: string[]) => void) {}

  /** bytes of frames held in memory now */
  get heldBytes(): number { return this.held; }
  /** units pushed and not yet committed */
  get pendingCount(): number { return this.pending.length; }

  /**
   * Take a unit of frames. Refused if its name is committed at the destination or pushed already:
   * a name stands for its frames, and a frame is stored once. Resolves once fewer than
   * maxHeldBytes are held in memory.
   */
  async push(unit: Pushed): Promise<void> {
    this.check(unit.name);
    this.pushing.add(unit.name);
    this.pending.push({ origin: { name: unit.name, size: unit.size }, unit });
    if (unit.block) this.held += unit.size;
    this.wakeConsumer?.();
    await this.room();
  }

  /** Throws if `name` cannot be pushed now. */
  check(name: string): void {
    if (this.ended) throw new FurError('capture-closed', `frame ${name}: the capture is closed; open a new one to add frames`, { name });
    if (this.failure !== undefined) throw this.failure;
    const unsafe = unsafeName(name);
    if (unsafe) throw new FurError('unsafe-name', `frame name ${JSON.stringify(name)} ${unsafe}; frame names become names at the destination`, { file: name });
    if (this.committed.has(name)) throw new FurError('name-committed', `frame ${name} is committed at the destination already; each frame name is stored once`, { name });
    if (this.pushing.has(name)) throw new FurError('name-repeated', `frame ${name} was added to this capture already; each frame name is stored once`, { name });
  }

  /** Resolves while fewer than maxHeldBytes are held (or once they are). */
  room(): Promise<void> {
    if (this.held < this.maxHeldBytes || this.failure !== undefined || this.ended) return this.failure !== undefined ? Promise.reject(this.failure) : Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.roomWaiters.push(() => (this.failure !== undefined ? reject(this.failure) : resolve()));
    });
  }

  /** No more frames come: the run ends once every one pushed is committed. */
  end(): void {
    this.ended = true;
    this.wakeConsumer?.();
  }

  /** The run failed for good: pushes and waits for room reject with its error. */
  fail(e: unknown): void {
    this.failure ??= e;
    this.wakeRoom();
    this.resolveOpened();
  }

  async *items(target: Target, _progress: Progress): AsyncGenerator<SourceItem> {
    for (const name of target.committed.keys()) this.committed.add(name);
    this.resolveOpened();
    // every attempt starts at the first frame not released: one the last attempt sent without
    // seeing its commit may be committed all the same (the destination says so now)
    let next = this.released;
    for (;;) {
      while (next - this.released >= this.pending.length) {
        if (this.ended) return;
        await new Promise<void>((r) => { this.wakeConsumer = r; });
        this.wakeConsumer = undefined;
      }
      const e = this.pending[next - this.released]!;
      next++;
      // commits land in order: one committed already is at the front by now
      if (target.committed.has(e.origin.name)) { await this.release([e.origin]); continue; }
      const block = e.unit.block ?? await e.unit.load!();
      yield { file: e.origin, block };
    }
  }

  /** Units are committed in the order pushed, so they leave from the front. */
  async release(units: Origin[]): Promise<void> {
    const done = new Set(units);
    const names: string[] = [];
    while (this.pending.length && done.has(this.pending[0]!.origin)) {
      const { origin, unit } = this.pending.shift()!;
      this.released++;
      if (unit.block) this.held -= unit.size;
      this.pushing.delete(origin.name);
      this.committed.add(origin.name);
      names.push(origin.name);
      await unit.release?.();
    }
    this.onReleased?.(names);
    this.wakeRoom();
  }

  /** A batch holds at most a third of what may be held: two commits in flight and one filling. */
  batchLimit(first: SourceItem): number {
    const perFrame = Math.max(1, first.block.data.length / Math.max(1, first.block.count));
    return Math.max(1, Math.floor(this.maxHeldBytes / 3 / perFrame));
  }

  private wakeRoom(): void {
    if (this.held >= this.maxHeldBytes && this.failure === undefined && !this.ended) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
  }
}
