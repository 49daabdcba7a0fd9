import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Bytes stored in the files of a folder (not its subfolders): a destination's file, or the file
 * being made before its first commit. Blocks, not sizes: fur extends a file it writes beyond its
 * data (EOF headroom), which a sparse file does not store.
 */
export function folderBytes(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    try {
      const st = statSync(join(dir, name));
      if (st.isFile()) n += Math.min(st.size, st.blocks * 512);
    } catch { /* gone meanwhile */ }
  }
  return n;
}
