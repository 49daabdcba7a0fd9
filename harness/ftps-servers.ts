/**
 * The FTPS servers fur is checked against, each started on 127.0.0.1 with a certificate made for
 * the test and TLS required on logins and data connections, behind one interface: where a user's
 * files land on disk (h5py reads them there), the URL and the flags fur needs.
 *  - vsftpd (Debian package): TLS session reuse required on data connections;
 *  - ProFTPD with mod_tls (unpacked): TLS session reuse required (its default);
 *  - pure-ftpd (unpacked) as Debian sets it up: argon2id logins of seconds, failed CWD throttled;
 *  - pyftpdlib (python3-pyftpdlib, TLS through python3-openssl).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { makeCertificate } from './certificate.js';
import { freePorts } from './daemon.js';
import { startProftpd } from './proftpd.js';
import { startPureFtpd } from './pure-ftpd.js';
import { startPyftpd } from './pyftpd.js';
import { startVsftpd } from './vsftpd.js';

export const FTPS_SERVERS = ['vsftpd', 'proftpd', 'pure-ftpd', 'pyftpdlib'] as const;
export type FtpsServerName = (typeof FTPS_SERVERS)[number];

/** A server as the interop tests' matrix (test/interop/support/server-matrix.ts) and the benchmarks take it. */
export interface FtpsServer {
  readonly name: FtpsServerName;
  /** the user's folder on this machine: every path given to `url` is inside it */
  readonly root: string;
  /** `ftps://user@127.0.0.1:port/…` for a path of this machine inside `root` */
  url(path: string): string;
  /** --password-env and --ca-file for fur */
  readonly flags: string[];
  /** stops the server and removes its folder */
  dispose(): Promise<void>;
}

const USER = 'furftp';
const UID = 10001;

export async function startFtpsServer(name: FtpsServerName): Promise<FtpsServer> {
  if (name === 'vsftpd') {
    const v = await startVsftpd();
    return { name, root: v.home, url: (path) => v.url(inside(v.home, path)), flags: ['--password-env', v.passwordEnv, '--ca-file', v.caFile], dispose: () => v.stop() };
  }
  const dir = mkdtempSync(join(tmpdir(), `fur-${name}-`));
  // the servers' sessions run as the user: its home must be reachable
  chmodSync(dir, 0o755);
  const home = join(dir, 'home');
  const cert = makeCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, cert.cert);
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, cert.cert);
  writeFileSync(keyFile, cert.key, { mode: 0o600 });
  const password = `fur-${Math.random().toString(36).slice(2)}`;
  const passwordEnv = `FUR_INTEROP_${name.replace(/\W/g, '_').toUpperCase()}_PASSWORD`;
  process.env[passwordEnv] = password;
  let port: number;
  let stop: () => Promise<void>;
  if (name === 'proftpd') {
    port = await freePorts(41);
    const p = await startProftpd({
      modules: ['mod_tls.c'], port, users: [{ name: USER, password, home, uid: UID }],
      config: (d) => [
        `PassivePorts ${port + 1} ${port + 40}`,
        'TLSEngine on', 'TLSRequired on', 'TLSProtocol TLSv1.2 TLSv1.3', 'TLSVerifyClient off',
        `TLSRSACertificateFile ${certFile}`, `TLSRSACertificateKeyFile ${keyFile}`, `TLSLog ${join(d, 'tls.log')}`,
        // TLSOptions without NoSessionReuseRequired: data connections must resume the control session
      ],
    });
    stop = () => p.stop();
  } else if (name === 'pure-ftpd') {
    port = await freePorts(41);
    const p = await startPureFtpd({ dir, port, passivePorts: 40, user: USER, password, home, uid: UID, cert: cert.cert, key: cert.key });
    stop = () => p.stop();
  } else {
    mkdirSync(home);
    const p = await startPyftpd({ home, certFile, keyFile, user: USER, password });
    port = p.port;
    stop = () => p.stop();
  }
  return {
    name,
    root: home,
    // each server confines the user to its home: `/` is the home
    url: (path: string) => `ftps://${USER}@127.0.0.1:${port}/${inside(home, path)}`,
    flags: ['--password-env', passwordEnv, '--ca-file', caFile],
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `path` (of this machine) relative to the server's folder `root` */
function inside(root: string, path: string): string {
  const rel = relative(root, path);
  if (rel.startsWith('..')) throw new Error(`${path} is not inside the FTP user's folder ${root}`);
  return rel;
}
