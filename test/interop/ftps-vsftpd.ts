/**
 * A private vsftpd (Debian's /usr/sbin/vsftpd) for the interop tier: FTPS with explicit TLS
 * required for logins and data (and TLS session reuse on data connections, vsftpd's default),
 * a certificate made by the test, on 127.0.0.1 and a free port, logging in a local user made for
 * the tests. It serves real paths, so what fur stores is read in place by h5py.
 *
 * Needs root (the tests run as root in CI): vsftpd authenticates local users through PAM.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificate, type Certificate } from '../../src/transport/ftps-tls.js';

export const VSFTPD = '/usr/sbin/vsftpd';
export const FTP_USER = 'furftp';

export interface Vsftpd {
  readonly port: number;
  /** the user's home: where `ftps://furftp@…/~/x` lands */
  readonly home: string;
  readonly caFile: string;
  readonly passwordEnv: string;
  /** `ftps://furftp@127.0.0.1:port/~/path` */
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

async function freePorts(n: number): Promise<number> {
  // a base port with n free ports after it (passive range), found by trying
  for (let tries = 0; tries < 50; tries++) {
    const base = 30000 + Math.floor(Math.random() * 20000);
    const ok = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(base + i, '127.0.0.1', () => s.close(() => resolve(true)));
    })));
    if (ok.every(Boolean)) return base;
  }
  throw new Error('no free port range for vsftpd');
}

export async function startVsftpd(o: VsftpdOptions = {}): Promise<Vsftpd> {
  if (!existsSync(VSFTPD)) throw new Error(`${VSFTPD} is missing: apt-get install vsftpd`);
  const dir = mkdtempSync(join(tmpdir(), 'fur-vsftpd-'));
  chmodSync(dir, 0o755);
  const home = join(dir, 'home');
  mkdirSync(home);
  const password = `fur-${Math.random().toString(36).slice(2)}`;
  try {
    execFileSync('id', [FTP_USER], { stdio: 'ignore' });
    execFileSync('usermod', ['-d', home, FTP_USER]);
  } catch {
    execFileSync('useradd', ['-M', '-d', home, '-s', '/bin/sh', FTP_USER]);
  }
  execFileSync('chpasswd', [], { input: `${FTP_USER}:${password}\n` });
  execFileSync('chown', [FTP_USER, home]);
  const passwordEnv = 'FUR_INTEROP_FTP_PASSWORD';
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
  // listening once a connection is accepted
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`vsftpd did not start (exit ${child.exitCode}): ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port, home, caFile, passwordEnv, log,
    url: (path: string) => `ftps://${FTP_USER}@127.0.0.1:${port}/~/${path.replace(/^\/+/, '')}`,
    async stop() {
      // vsftpd forks a process per session, which outlives the listener: end those first, by pid
      for (const pid of descendants(child.pid!)) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every process below `root`, from /proc. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* ended meanwhile */ }
  }
  const out: number[] = [];
  const walk = (p: number) => { for (const [c, pp] of parent) if (pp === p) { out.push(c); walk(c); } };
  walk(root);
  return out;
}
