/** Deleting local sources — only ever called for files whose commit is durable at the destination. */
import { rm } from 'node:fs/promises';
import type { Origin } from './source.js';

/** Each unit's local file, where it has one (frames pushed from memory have none). */
export async function deleteSources(files: Origin[], warn: (message: string) => void): Promise<number> {
  let n = 0;
  for (const f of files) {
    if (f.path === undefined) continue;
    try {
      await rm(f.path);
      n++;
      if (f.marker) await rm(f.marker, { force: true });
    } catch (e) {
      // the frames are safe remotely; a file we cannot delete only costs local space
      warn(`${f.path}: committed but not deleted (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  return n;
}
