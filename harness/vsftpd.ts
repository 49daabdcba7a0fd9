/**
 * A private vsftpd (Debian's /usr/sbin/vsftpd) for the interop tier: FTPS with explicit TLS
 * required for logins and data (and TLS session reuse on data connections, vsftpd's default),
 * a certificate made by the test, on 127.0.0.1 and a free port, logging in a local user made for
 * the tests. It serves real paths, so what fur stores is read in place by h5py.
 *
 * Needs root (the tests run as root in CI): vsftpd authenticates local users through PAM.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificate, type Certificate } from './certificate.js';
import { freePorts, listening, stopAll } from './daemon.js';

export const VSFTPD = '/usr/sbin/vsftpd';
/** the users the servers log in begin so (each server has one of its own) */
export const FTP_USER = 'furftp';

export interface Vsftpd {
  readonly port: number;
  /** the user fur logs in as */
  readonly user: string;
  /** the user's home: where `ftps://user@…/~/x` lands */
  readonly home: string;
  readonly caFile: string;
  readonly passwordEnv: string;
  /** `ftps://user@127.0.0.1:port/~/path` */
  url(path: string): string;
  readonly log: string;
  stop(): Promise<void>;
}

export interface VsftpdOptions {
  certificate?: Certificate;
  /** vsftpd's cmds_allowed: a server that refuses everything else (e.g. without RNFR/RNTO) */
  commandsAllowed?: string[];
}

const ALL_COMMANDS = ['ABOR', 'APPE', 'CDUP', 'CWD', 'DELE', 'EPSV', 'FEAT', 'LIST', 'MDTM', 'MKD', 'MLSD', 'MODE', 'NLST', 'NOOP', 'OPTS', 'PASS', 'PASV', 'PBSZ',
  'PORT', 'PROT', 'PWD', 'QUIT', 'REST', 'RETR', 'RMD', 'RNFR', 'RNTO', 'SIZE', 'STAT', 'STOR', 'STRU', 'SYST', 'TYPE', 'USER', 'AUTH', 'EPRT'];
export { ALL_COMMANDS };

export async function startVsftpd(o: VsftpdOptions = {}): Promise<Vsftpd> {
  if (!existsSync(VSFTPD)) throw new Error(`${VSFTPD} is missing: apt-get install vsftpd`);
  const dir = mkdtempSync(join(tmpdir(), 'fur-vsftpd-'));
  chmodSync(dir, 0o755);
  const home = join(dir, 'home');
  mkdirSync(home);
  // a user of its own: servers started at once (by other test processes too) do not share a password
  const user = `${FTP_USER}${randomBytes(4).toString('hex')}`;
  const password = `fur-${randomBytes(9).toString('hex')}`;
  execFileSync('useradd', ['-M', '-d', home, '-s', '/bin/sh', user]);
  execFileSync('chpasswd', [], { input: `${user}:${password}\n` });
  execFileSync('chown', [user, home]);
  const passwordEnv = `FUR_INTEROP_FTP_PASSWORD_${user.toUpperCase()}`;
  process.env[passwordEnv] = password;
  const cert = o.certificate ?? makeCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(dir, 'cert.pem'), cert.cert);
  writeFileSync(join(dir, 'key.pem'), cert.key, { mode: 0o600 });
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, cert.cert);
  mkdirSync('/var/run/vsftpd/empty', { recursive: true });
  const port = await freePorts(41);
  const log = join(dir, 'vsftpd.log');
  const conf = [
    'listen=YES', 'listen_ipv6=NO', 'listen_address=127.0.0.1', `listen_port=${port}`, 'background=NO',
    'anonymous_enable=NO', 'local_enable=YES', 'write_enable=YES', 'local_umask=022', 'pam_service_name=vsftpd',
    'ssl_enable=YES', `rsa_cert_file=${join(dir, 'cert.pem')}`, `rsa_private_key_file=${join(dir, 'key.pem')}`,
    // vsftpd's default cipher (DES-CBC3-SHA) is gone from OpenSSL 3
    'ssl_ciphers=HIGH', 'force_local_logins_ssl=YES', 'force_local_data_ssl=YES', 'require_ssl_reuse=YES',
    'pasv_enable=YES', 'pasv_address=127.0.0.1', `pasv_min_port=${port + 1}`, `pasv_max_port=${port + 40}`,
    'secure_chroot_dir=/var/run/vsftpd/empty',
    // containers often refuse seccomp filters and new network namespaces
    'seccomp_sandbox=NO', 'isolate_network=NO', 'isolate=NO',
    'max_clients=50', 'max_per_ip=50',
    'xferlog_enable=YES', `vsftpd_log_file=${log}`, 'log_ftp_protocol=NO', 'dual_log_enable=NO',
    ...(o.commandsAllowed ? [`cmds_allowed=${o.commandsAllowed.join(',')}`] : []),
  ].join('\n') + '\n';
  writeFileSync(join(dir, 'vsftpd.conf'), conf);
  const child: ChildProcess = spawn(VSFTPD, [join(dir, 'vsftpd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  await listening(port, child, 'vsftpd', () => stderr);
  return {
    port, user, home, caFile, passwordEnv, log,
    url: (path: string) => `ftps://${user}@127.0.0.1:${port}/~/${path.replace(/^\/+/, '')}`,
    async stop() {
      // vsftpd forks a process per session, which outlives the listener
      await stopAll(child);
      execFileSync('userdel', [user]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
