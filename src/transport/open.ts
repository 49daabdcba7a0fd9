import { mkdir } from 'node:fs/promises';
import { FurError } from '../errors.js';
import type { Destination } from './destination.js';
import { FileDestination, fsError } from './file.js';
import { SftpDestination, type SftpOptions } from './sftp.js';
import { parseDestinationUrl, type DestinationUrl } from './url.js';

/** Everything any destination may need; each kind uses what applies to it. */
export interface OpenOptions extends SftpOptions {}

/**
 * Open the destination a URL names (or a plain path, meaning a local directory). SFTP connects
 * and authenticates here, so capabilities are known once this resolves.
 */
export async function openDestination(url: string | DestinationUrl, options: OpenOptions = {}): Promise<Destination> {
  const target = typeof url === 'string' ? parseDestinationUrl(url) : url;
  switch (target.scheme) {
    case 'file':
      if (options.createRoot) {
        await mkdir(target.path, { recursive: true }).catch((e) => { throw fsError(e, target.path, 'create destination'); });
      }
      return FileDestination.open(target.path);
    case 'sftp':
      return SftpDestination.connect(target, options);
    case 'ftps':
    case 's3':
      throw new FurError('unsupported-destination',
        `${target.display}: ${target.scheme} destinations are not implemented yet; use sftp:// or a mounted share (file:///path)`,
        { url: target.display, scheme: target.scheme });
  }
}
