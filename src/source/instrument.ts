/**
 * What the instrument writes, seen from the outside: the source folder sampled now and then,
 * independently of the pipeline. The folder watch hands files over only as fast as they are
 * uploaded, so it cannot tell how fast the instrument writes; this can, and so whether fur keeps
 * up, how much waits on the local disk, and how long that disk lasts.
 */
import { statfs, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { compileGlob, readDir } from './sequence.js';

const STAT_AT_ONCE = 32;

export interface LocalState {
  /** bytes the instrument has written into the folder since the first sample (files that matched) */
  written: number;
  /** files and bytes present now that `isDone` does not count as taken */
  waiting: { files: number; bytes: number };
  /** free space on the folder's file system for an unprivileged user, bytes (undefined: unknown) */
  free?: number;
}

export class InstrumentMeter {
  /** every matching name seen, with its last size (kept after fur deletes it: it was written) */
  private readonly sizes = new Map<string, number>();
  /** names whose size changed at the last sample: statted again at the next one */
  private readonly growing = new Set<string>();
  private present = new Set<string>();
  private readonly match: (name: string) => boolean;
  private base = 0;
  private total = 0;
  private first = true;

  constructor(private readonly dir: string, pattern: string, private readonly ignore: (name: string) => boolean = () => false) {
    this.match = compileGlob(pattern, '--pattern');
  }

  /**
   * One look at the folder: a listing, a stat of each new or still-growing file, and the file
   * system's free space. Files present at the first look are the starting point, not the rate.
   */
  async sample(isDone: (name: string) => boolean): Promise<LocalState> {
    const entries = await readDir(this.dir).catch(() => []);
    const present = new Set<string>();
    const toStat: string[] = [];
    for (const e of entries) {
      if (e.isDirectory() || !this.match(e.name) || this.ignore(e.name)) continue;
      present.add(e.name);
      if (!this.sizes.has(e.name) || this.growing.has(e.name)) toStat.push(e.name);
    }
    this.present = present;
    const sizes: (number | undefined)[] = [];
    for (let i = 0; i < toStat.length; i += STAT_AT_ONCE) {
      sizes.push(...await Promise.all(toStat.slice(i, i + STAT_AT_ONCE).map((n) => stat(join(this.dir, n)).then((s) => s.size, () => undefined))));
    }
    for (const [i, name] of toStat.entries()) {
      const size = sizes[i];
      if (size === undefined) continue;
      const before = this.sizes.get(name) ?? 0;
      if (size !== before || !this.sizes.has(name)) this.growing.add(name);
      else this.growing.delete(name);
      this.sizes.set(name, size);
      this.total += size - before;
    }
    if (this.first) { this.base = this.total; this.first = false; }
    let files = 0, bytes = 0;
    for (const name of this.present) {
      if (isDone(name)) continue;
      files++;
      bytes += this.sizes.get(name) ?? 0;
    }
    const free = await statfs(this.dir).then((s) => s.bavail * s.bsize, () => undefined);
    return { written: this.total - this.base, waiting: { files, bytes }, free };
  }
}
