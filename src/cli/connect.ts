/** From CLI text to an open destination and the path inside it. */
import { statSync, type Stats } from 'node:fs';
import { FurError } from '../errors.js';
import { connectUrl } from '../pipeline/connect.js';
import type { Destination } from '../transport/destination.js';
import type { Egress } from '../transport/egress.js';
import type { OpenOptions } from '../transport/open.js';
import { chosenSsh } from '../transport/sftp-openssh.js';
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
  /** where the run's bytes leave (counted, paced by --bwlimit) */
  egress?: Egress;
}

export function openOptions(f: ConnectionFlags): OpenOptions {
  return { ...openOptionsOf(connectionOf(f), f.warn), egress: f.egress };
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

/**
 * The connection settings as typed, checked before anything connects: files that must exist,
 * variables that must be set, numbers in range, an endpoint that is a URL.
 */
export function checkConnection(f: ConnectionFlags): void {
  const bad = (setting: string, value: string, why: string) => new FurError('bad-option', `${setting} ${value}: ${why}`, { setting, value });
  // settings that contradict each other, as the SFTP transport refuses them (whether an ssh
  // program is there is the transport's to say, for an sftp:// destination only)
  chosenSsh({ ssh: f.ssh ?? 'auto', sshConfig: f.sshConfig, passwordEnv: f.passwordEnv, passphraseEnv: f.passphraseEnv, sshCommand: ['ssh'] });
  for (const [setting, file] of [['--identity', f.identity], ['--ca-file', f.caFile], ['--ssh-config', f.sshConfig]] as const) {
    if (file === undefined) continue;
    const st = statOrUndefined(file);
    if (!st) throw bad(setting, file, 'no such file');
    if (!st.isFile()) throw bad(setting, file, 'not a file');
  }
  if (f.knownHosts !== undefined && statOrUndefined(f.knownHosts)?.isDirectory()) throw bad('--known-hosts', f.knownHosts, 'a folder, not a known_hosts file');
  for (const [setting, variable, what] of [['--password-env', f.passwordEnv, 'the password'], ['--passphrase-env', f.passphraseEnv, 'the key\'s passphrase']] as const) {
    if (variable !== undefined && process.env[variable] === undefined) {
      throw bad(setting, variable, `the environment variable ${variable} is not set; export ${what} in it`);
    }
  }
  // the numbers as the library checks them (--connections, --channels, --connect-timeout)
  openOptionsOf(connectionOf(f));
  if (f.endpoint !== undefined) {
    let u: URL | undefined;
    try { u = new URL(f.endpoint); } catch { u = undefined; }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw bad('--endpoint', f.endpoint, 'not an https:// (or http://) URL');
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try { return statSync(path); } catch { return undefined; }
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
