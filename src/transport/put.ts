import { open } from 'node:fs/promises';
import type { Destination } from './destination.js';
import { fsError } from './file.js';

export interface PutOptions {
  /** bytes read from the local file per write (default 1 MiB) */
  chunkSize?: number;
  /** unacknowledged bytes allowed before reading more of the local file (default 16 MiB) */
  maxUnacknowledged?: number;
  /** suffix of the temporary name the upload is written under (default `.part`) */
  partSuffix?: string;
}

/**
 * Upload a local file so that `remotePath` is either absent, the previous version, or the whole
 * new file: write to a temporary name, make it durable where the destination can, then rename
 * into place. On failure the temporary file is removed (best effort) and the error rethrown.
 */
export async function putFile(dest: Destination, localPath: string, remotePath: string, opts: PutOptions = {}): Promise<{ bytes: number }> {
  const chunk = opts.chunkSize ?? 1024 * 1024;
  const limit = opts.maxUnacknowledged ?? 16 * 1024 * 1024;
  const part = `${remotePath}${opts.partSuffix ?? '.part'}`;
  const src = await open(localPath, 'r').catch((e) => { throw fsError(e, localPath, 'open for upload'); });
  try {
    const out = await dest.openWrite(part, { truncate: true });
    let offset = 0;
    try {
      const pending: Array<{ end: number; done: Promise<void> }> = [];
      for (;;) {
        // Read ahead only as far as the destination keeps up, so memory stays bounded.
        while (pending.length > 0 && offset - pending[0].end + chunk > limit) await pending.shift()!.done;
        const buf = Buffer.allocUnsafe(chunk);
        const { bytesRead } = await src.read(buf, 0, chunk, offset).catch((e) => { throw fsError(e, localPath, 'read'); });
        if (bytesRead === 0) break;
        pending.push({ end: offset + bytesRead, done: out.write(offset, buf.subarray(0, bytesRead)) });
        offset += bytesRead;
      }
      if (dest.capabilities.fsync && out.sync) await out.sync();
      else await out.flush();
      await out.close();
    } catch (e) {
      await out.close().catch(() => {});
      await dest.remove(part).catch(() => {});
      throw e;
    }
    await dest.rename(part, remotePath);
    return { bytes: offset };
  } finally {
    await src.close();
  }
}
