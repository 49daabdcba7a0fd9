/** From CLI text to an open destination and the path inside it. */
import { FurError } from '../errors.js';
import { splitTarget } from '../pipeline/run.js';
import type { Destination } from '../transport/destination.js';
import { openDestination, type OpenOptions } from '../transport/open.js';
import { parseDestinationUrl } from '../transport/url.js';

export interface ConnectionFlags {
  identity?: string;
  passwordEnv?: string;
  knownHosts?: string;
  acceptNewHostKey?: boolean;
}

export function openOptions(f: ConnectionFlags): OpenOptions {
  return {
    identity: f.identity,
    passwordEnv: f.passwordEnv,
    knownHosts: f.knownHosts,
    acceptNewHostKey: f.acceptNewHostKey ?? false,
    createRoot: true,
  };
}

/** For `append` the URL names a file: open its folder; otherwise the URL is the folder. */
export async function connect(url: string, method: string, flags: ConnectionFlags): Promise<{ dest: Destination; path: string }> {
  const target = parseDestinationUrl(url);
  if (target.scheme === 'ftps' || target.scheme === 's3') {
    throw new FurError('unsupported-destination', `${target.display}: ${target.scheme} destinations are not implemented yet; use sftp:// or a mounted share (file:///path)`, { url: target.display });
  }
  const { root, inside } = splitTarget(method, target.path);
  // the destination is the folder; messages name it, not the file inside
  const display = target.display.endsWith(target.path) ? target.display.slice(0, target.display.length - target.path.length) + root : target.display;
  const dest = await openDestination({ ...target, path: root, display } as typeof target, openOptions(flags));
  return { dest, path: inside };
}
