/**
 * The remote side's file system under test control: a small tmpfs (mounted by the test — it runs
 * as root) that fills up and gets space again, and folder permissions that change mid-run.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rm, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export class Tmpfs {
  private filler: string;
  private filled = false;

  private constructor(readonly dir: string, readonly bytes: number) {
    this.filler = join(dir, '.fur-faults-filler');
  }

  /** Mounts a tmpfs of `bytes` at `dir` (created). */
  static async mount(dir: string, bytes: number): Promise<Tmpfs> {
    mkdirSync(dir, { recursive: true });
    await exec('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'fur-faults', dir]);
    return new Tmpfs(dir, bytes);
  }

  async available(): Promise<number> {
    const s = await statfs(this.dir);
    return s.bavail * s.bsize;
  }

  /** Fills the file system until only about `leave` bytes are free (whole pages). */
  async fill(leave: number): Promise<void> {
    const target = Math.max(0, (await this.available()) - leave);
    const fh = await open(this.filler, 'a');
    try {
      const block = Buffer.alloc(64 << 10, 0xa5);
      let written = 0;
      while (written < target) {
        const n = Math.min(block.length, target - written);
        try {
          await fh.write(block, 0, n);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
        written += n;
      }
    } finally {
      await fh.close();
    }
    this.filled = true;
  }

  get isFull(): boolean {
    return this.filled;
  }

  /** Gives the space back. */
  async free(): Promise<void> {
    await rm(this.filler, { force: true });
    this.filled = false;
  }

  async unmount(): Promise<void> {
    for (let i = 0; mounted(this.dir); i++) {
      try {
        await exec('umount', [this.dir]);
      } catch {
        // a session process that has not quite gone may hold it for a moment; then detach it
        if (i >= 20) {
          await exec('umount', ['-l', this.dir]);
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

/** whether something is mounted at `dir` (per /proc/mounts) */
export function mounted(dir: string): boolean {
  const target = resolve(dir);
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === target);
}
