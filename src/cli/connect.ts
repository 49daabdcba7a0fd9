/** From CLI text to an open destination and the path inside it. */
import { FurError } from '../errors.js';
import { connectUrl } from '../pipeline/connect.js';
import type { Destination } from '../transport/destination.js';
import type { OpenOptions } from '../transport/open.js';
import { openOptionsOf, type ConnectionOptions } from '../api/options.js';
import { duration } from './duration.js';

export { checkMethod } from '../pipeline/connect.js';

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
  return openOptionsOf(connectionOf(f), f.warn);
}

/** The flags as the library takes them (numbers checked there, naming the flag). */
export function connectionOf(f: ConnectionFlags): ConnectionOptions {
  return {
    ssh: f.ssh ?? 'auto',
    sshConfig: f.sshConfig,
    identity: f.identity,
    passphraseEnv: f.passphraseEnv,
    passwordEnv: f.passwordEnv,
    knownHosts: f.knownHosts,
    acceptNewHostKey: f.acceptNewHostKey ?? false,
    endpoint: f.endpoint,
    region: f.region,
    profile: f.profile,
    caFile: f.caFile,
    implicitTls: f.implicitTls,
    connections: number(f.connections, '--connections'),
    channels: number(f.channels, '--channels'),
    connectTimeout: f.connectTimeout === undefined ? undefined : duration(f.connectTimeout, '--connect-timeout'),
  };
}

/** a number typed for `setting`, or undefined */
export function number(text: string | undefined, setting: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new FurError('bad-option', `${setting} '${text}': not a number`, { setting, value: text });
  return n;
}

/** For `append` the URL names a file: open its folder; otherwise the URL is the folder. */
export function connect(url: string, method: string, flags: ConnectionFlags): Promise<{ dest: Destination; path: string }> {
  return connectUrl(url, method, openOptions(flags));
}
