/**
 * A private pure-ftpd (Debian's pure-ftpd, unpacked: the package conflicts with vsftpd) for the
 * interop tier, set up as Debian sets it up (virtual users in a PureDB made by pure-pw with its
 * default argon2id hashing — each login costs seconds —, no anonymous logins, uids from 1000, the
 * HIGH cipher suite) with TLS required on logins and data connections, on 127.0.0.1.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unpackDebian, missingLibraries } from './debian.js';
import { listening, stopAll } from './daemon.js';

export const PURE_FTPD_PACKAGES = ['pure-ftpd', 'pure-ftpd-common'] as const;

export interface PureFtpdOptions {
  /** the server's own folder (database, certificate) */
  dir: string;
  port: number;
  /** passive ports port+1 … port+passivePorts */
  passivePorts: number;
  user: string;
  password: string;
  /** created if missing, owned by `uid`; the user is confined to it */
  home: string;
  uid: number;
  /** certificate and key, PEM */
  cert: string;
  key: string;
}

/** The unpacked package's root (usr/sbin/pure-ftpd, usr/bin/pure-pw), unpacked once (see debian.ts). */
export function pureFtpdRoot(): string {
  const root = unpackDebian(PURE_FTPD_PACKAGES);
  const missing = missingLibraries(join(root, 'usr/sbin/pure-ftpd'));
  if (missing.length) throw new Error(`pure-ftpd needs ${missing.join(', ')}: install the libraries .ci/run lists with it`);
  return root;
}

export async function startPureFtpd(o: PureFtpdOptions): Promise<{ stop(): Promise<void> }> {
  const root = pureFtpdRoot();
  const binary = join(root, 'usr/sbin/pure-ftpd');
  mkdirSync(o.home, { recursive: true });
  chownSync(o.home, o.uid, o.uid);
  const passwd = join(o.dir, 'pureftpd.passwd');
  const db = join(o.dir, 'pureftpd.pdb');
  // pure-pw reads the password twice from stdin when it is not a terminal
  execFileSync(join(root, 'usr/bin/pure-pw'), ['useradd', o.user, '-u', String(o.uid), '-g', String(o.uid), '-d', o.home, '-f', passwd],
    { input: `${o.password}\n${o.password}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
  execFileSync(join(root, 'usr/bin/pure-pw'), ['mkdb', db, '-f', passwd]);
  const pem = join(o.dir, 'pure-ftpd.pem');
  writeFileSync(pem, o.cert + o.key, { mode: 0o600 });
  const child = spawn(binary, [
    '--bind', `127.0.0.1,${o.port}`, '--login', `puredb:${db}`, '--noanonymous', '--dontresolve', '--minuid', '1000',
    '--tlsciphersuite', 'HIGH', '--tls', '3', '--certfile', pem,
    '--passiveportrange', `${o.port + 1}:${o.port + o.passivePorts}`, '--maxclientsnumber', '60', '--maxclientsperip', '60',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  await listening(o.port, child, 'pure-ftpd', () => stderr);
  return { stop: () => stopAll(child) };
}
