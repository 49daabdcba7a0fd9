/** Writing the chunk-index sidecar beside an HDF5 file at its destination (temporary name, then rename). */
import { posix } from 'node:path';
import type { Destination } from '../transport/destination.js';
import { SIDECAR_SUFFIX, type References } from './kerchunk.js';

export function sidecarPath(h5Path: string): string { return h5Path + SIDECAR_SUFFIX; }

/** the URL a reader should fetch the HDF5 file from */
export function fileUrl(dest: Destination, path: string): string {
  if (path.startsWith('/')) return dest.url.replace(/^(\w+:\/\/[^/]*).*$/, '$1') + path;
  return `${dest.url.replace(/\/$/, '')}/${path}`;
}

export async function putSidecar(dest: Destination, h5Path: string, refs: References): Promise<number> {
  return (await stageSidecar(dest, h5Path, refs))();
}

/**
 * Write the sidecar under its temporary name; the returned function gives it its name (and
 * returns its size). Staged while the commit it describes publishes, and named once that commit
 * is published, the sidecar costs one round trip after it rather than three; until named, no
 * reader sees it.
 */
export async function stageSidecar(dest: Destination, h5Path: string, refs: References): Promise<() => Promise<number>> {
  const bytes = Buffer.from(JSON.stringify(refs));
  const final = sidecarPath(h5Path);
  const temp = `${posix.dirname(final)}/.${posix.basename(final)}.fur-partial`;
  const out = await dest.openWrite(temp, { truncate: true });
  // Closed at once: every destination's close follows the writes before it (over SFTP, on the
  // same channel), so the write and the close share one round trip; a failed write fails both.
  const written = out.write(0, bytes);
  written.catch(() => {});
  await out.close();
  await written;
  return async () => {
    await dest.rename(temp, final);
    return bytes.length;
  };
}
