/** From CLI text to an open destination and the path inside it. */
import { FurError } from '../errors.js';
import { splitTarget } from '../pipeline/run.js';
import type { Destination } from '../transport/destination.js';
import { openDestination, type OpenOptions } from '../transport/open.js';
import { parseDestinationUrl } from '../transport/url.js';
import { duration } from './duration.js';

export interface ConnectionFlags {
  /** SFTP: openssh | builtin (default: OpenSSH where an ssh program exists) */
  ssh?: 'openssh' | 'builtin';
  sshConfig?: string;
  identity?: string;
  passphraseEnv?: string;
  passwordEnv?: string;
  knownHosts?: string;
  acceptNewHostKey?: boolean;
  /** S3: an S3-compatible service's URL */
  endpoint?: string;
  region?: string;
  profile?: string;
  /** FTPS, S3 over HTTPS: certificates to trust besides the system's */
  caFile?: string;
  /** FTPS: TLS from the first byte (port 990) */
  implicitTls?: boolean;
  /** SFTP: SSH connections to use (default: as many as the link needs) */
  connections?: string;
  /** SFTP: channels on each connection (default: as many as the link needs, up to 4) */
  channels?: string;
  /** seconds a connection may take to be made (see --connect-timeout) */
  connectTimeout?: string;
  /** one-line warnings from the destination */
  warn?: (message: string) => void;
}

export function openOptions(f: ConnectionFlags): OpenOptions {
  return {
    ssh: f.ssh ?? 'auto',
    sshConfig: f.sshConfig,
    identity: f.identity,
    passphraseEnv: f.passphraseEnv,
    passwordEnv: f.passwordEnv,
    knownHosts: f.knownHosts,
    acceptNewHostKey: f.acceptNewHostKey ?? false,
    createRoot: true,
    endpoint: f.endpoint,
    region: f.region,
    profile: f.profile,
    caFile: f.caFile,
    implicitTls: f.implicitTls,
    connections: count(f.connections, '--connections'),
    channels: count(f.channels, '--channels'),
    connectTimeoutMs: f.connectTimeout === undefined ? undefined : duration(f.connectTimeout, '--connect-timeout') * 1000,
    warn: f.warn,
  };
}

/** an expert's fixed number (≥ 1), or undefined for automatic */
function count(text: string | undefined, setting: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new FurError('bad-option', `${setting} ${JSON.stringify(text)}: must be a whole number from 1 to 64`, { setting, value: text });
  return n;
}

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
export async function connect(url: string, method: string, flags: ConnectionFlags): Promise<{ dest: Destination; path: string }> {
  const target = parseDestinationUrl(url);
  if (target.scheme === 's3') {
    const { root, inside } = splitTarget(method, `/${target.prefix}`);
    const prefix = root.replace(/^\/+/, '');
    const dest = await openDestination({ ...target, prefix, display: `s3://${target.bucket}/${prefix}` }, openOptions(flags));
    return { dest, path: inside };
  }
  const { root, inside } = splitTarget(method, target.path);
  // the destination is the folder; messages name it, not the file inside
  const display = target.display.endsWith(target.path) ? target.display.slice(0, target.display.length - target.path.length) + root : target.display;
  // append looks at its file first (continue it, or start it): asked for along with the folder
  const prefetchStat = method === 'append' ? inside : undefined;
  const dest = await openDestination({ ...target, path: root, display } as typeof target, { ...openOptions(flags), prefetchStat });
  return { dest, path: inside };
}
