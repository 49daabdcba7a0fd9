/**
 * The `files` method: each source file copied as-is to the destination folder, under a temporary
 * name first, renamed into place once complete (and synced where the destination can).
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { FurError } from '../errors.js';
import type { Destination } from '../transport/destination.js';
import type { CompletedFile } from '../source/watch.js';
import { TEMP_SUFFIX } from './batches.js';

export class FilesTarget {
  readonly committed = new Map<string, number>();

  private constructor(private dest: Destination, private dir: string) {}

  static async open(dest: Destination, dir: string): Promise<FilesTarget> {
    const t = new FilesTarget(dest, dir);
    await dest.mkdirp(dir);
    for (const name of await dest.list(dir)) {
      if (name.endsWith(TEMP_SUFFIX)) await dest.remove(posix.join(dir, name)); // an interrupted upload
    }
    return t;
  }

  /**
   * True when the destination already holds this file, byte for byte (a restarted run); an error
   * when it holds a different file of that name (a capture that reuses names), which must neither
   * replace it nor be deleted as if sent.
   */
  async has(file: CompletedFile): Promise<boolean | FurError> {
    const path = posix.join(this.dir, file.name);
    const st = await this.dest.stat(path);
    if (st === null || st.isDirectory) return false;
    const local = await readFile(file.path);
    if (st.size === local.length) {
      const remote = await this.dest.openRead(path);
      try {
        if (Buffer.compare(Buffer.from(await remote.read(0, st.size)), local) === 0) return true;
      } finally {
        await remote.close();
      }
    }
    return new FurError('name-reused',
      `${file.path}: ${this.dest.url.replace(/\/$/, '')}/${path} already exists with other content; a capture that reuses file names needs a new destination`,
      { file: file.path });
  }

  async close(): Promise<void> {}

  async upload(file: CompletedFile, data?: Uint8Array): Promise<number> {
    const bytes = data ?? new Uint8Array(await readFile(file.path));
    const final = posix.join(this.dir, file.name);
    const temp = final + TEMP_SUFFIX;
    const remote = await this.dest.openWrite(temp, { truncate: true });
    try {
      if (bytes.length) await remote.write(0, bytes);
      await remote.flush();
      if (this.dest.capabilities.fsync) await remote.sync?.();
    } finally {
      await remote.close();
    }
    await this.dest.rename(temp, final);
    return bytes.length;
  }
}
