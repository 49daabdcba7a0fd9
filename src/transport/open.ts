import { mkdir } from 'node:fs/promises';
import type { Destination } from './destination.js';
import type { Egress } from './egress.js';
import { FileDestination, fsError } from './file.js';
import type { FtpsOptions } from './ftps.js';
import type { S3Options } from './s3.js';
import { SftpDestination, type SftpOptions } from './sftp.js';
import { parseDestinationUrl, type DestinationUrl } from './url.js';

/** Everything any destination may need; each kind uses what applies to it. */
export interface OpenOptions extends SftpOptions,
  Pick<FtpsOptions, 'implicitTls' | 'caFile' | 'connections' | 'warn' | 'connectTimeoutMs'>,
  Pick<S3Options, 'endpoint' | 'region' | 'profile' | 'partSize' | 'connectTimeoutMs'> {
  /** where the run's bytes leave: counted, and paced by --bwlimit (every kind of destination) */
  egress?: Egress;
}

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
      return FileDestination.open(target.path, options.egress);
    case 'sftp':
      return SftpDestination.connect(target, options);
    // loaded on demand: the S3 SDK alone takes a noticeable share of a start-up
    case 'ftps':
      return (await import('./ftps.js')).FtpsDestination.connect(target, options);
    case 's3':
      return (await import('./s3.js')).S3Destination.connect(target, options);
  }
}
