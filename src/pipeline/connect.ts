/** From a destination URL to an open destination and the path inside it. */
import { FurError } from '../errors.js';
import type { Destination } from '../transport/destination.js';
import { openDestination, type OpenOptions } from '../transport/open.js';
import { parseDestinationUrl } from '../transport/url.js';
import { splitTarget } from './run.js';

/** Refuse, before connecting, an upload method the destination's protocol cannot carry. */
export function checkMethod(url: string, method: string): void {
  const target = parseDestinationUrl(url);
  if (target.scheme === 'ftps' && method === 'append') {
    throw new FurError('method-unsupported',
      `${target.display}: --method append writes into one growing file, and FTP cannot write into the middle of a file (it only stores or appends whole streams); use --method batches (one HDF5 file per batch) or --method files`,
      { url: target.display, method });
  }
}

/** For `append` the URL names a file: open its folder; otherwise the URL is the folder. */
export async function connectUrl(url: string, method: string, options: OpenOptions): Promise<{ dest: Destination; path: string }> {
  const target = parseDestinationUrl(url);
  if (target.scheme === 's3') {
    const { root, inside } = splitTarget(method, `/${target.prefix}`);
    const prefix = root.replace(/^\/+/, '');
    const dest = await openDestination({ ...target, prefix, display: `s3://${target.bucket}/${prefix}` }, options);
    return { dest, path: inside };
  }
  const { root, inside } = splitTarget(method, target.path);
  // the destination is the folder; messages name it, not the file inside
  const display = target.display.endsWith(target.path) ? target.display.slice(0, target.display.length - target.path.length) + root : target.display;
  // append looks at its file first (continue it, or start it): asked for along with the folder
  const prefetchStat = method === 'append' ? inside : undefined;
  const dest = await openDestination({ ...target, path: root, display } as typeof target, { ...options, prefetchStat });
  return { dest, path: inside };
}
