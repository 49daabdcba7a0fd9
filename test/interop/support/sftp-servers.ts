/**
 * SFTP servers fur's authors did not write, for the interop tier: ProFTPD's mod_sftp (unpacked
 * from Debian's packages: they conflict with vsftpd's, so they are never installed), dropbear with
 * OpenSSH's sftp-server, and a Paramiko server (paramiko_sftp.py, the stack of archives such as
 * ERDA). Each listens on 127.0.0.1 with a generated host key and admits the user running the tests
 * (root in CI) with a generated client key. Sessions store into the real file system, so a test
 * reads what arrived in place; a remote path is the local path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Capabilities } from '../../../src/transport/destination.js';
import { openDestination } from '../../../src/transport/open.js';
import type { SftpDestination } from '../../../src/transport/sftp.js';
import { runOk } from '../../../harness/run.js';
import { PYTHON, SUPPORT_DIR } from './h5py.js';
import { proftpdRoot } from '../../../harness/proftpd.js';
import { bannerArrives, freePort, stopServer, tail } from '../../../harness/sshd.js';

export interface SftpServer {
  /** what the server is, as a test names it: "ProFTPD mod_sftp" */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** client private key (OpenSSH format, ed25519) */
  readonly identityFile: string;
  /** known_hosts with the server's host key for [127.0.0.1]:port */
  readonly knownHostsFile: string;
  /** a folder of this machine for the test's files; the server sees the same path */
  readonly root: string;
  /** the sftp:// URL of a path on this machine */
  url(path: string): string;
  /** the CLI flags that log in: --identity, --known-hosts */
  readonly flags: string[];
  /** the server's log so far */
  log(): string;
  /** stops the server and its sessions, and deletes its folder */
  dispose(): Promise<void>;
}

const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const DROPBEAR = '/usr/sbin/dropbear';
const DROPBEARKEY = '/usr/bin/dropbearkey';
const UNSHARE = '/usr/bin/unshare';
const PARAMIKO_SFTP = join(SUPPORT_DIR, 'paramiko_sftp.py');

/** An ed25519 key pair made by OpenSSH's ssh-keygen: the private key's path; `.pub` beside it. */
async function keyPair(file: string, comment: string): Promise<string> {
  await runOk(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  return file;
}

/** "type base64" of an OpenSSH public key line */
function keyLine(pub: string): string {
  return pub.trim().split(/\s+/).slice(0, 2).join(' ');
}

interface Launch {
  name: string;
  /** the server's folder: keys, configuration, log */
  dir: string;
  /** host key line for known_hosts ("ssh-ed25519 AAAA…") */
  hostKeyLine: string;
  /** the program and arguments that serve on `port` in the foreground, writing its log to stdout/stderr */
  command(port: number): { file: string; args: string[] };
}

/**
 * Starts a server on a free port and waits for its SSH banner (on a port taken meanwhile by
 * another process, again on another). The stop kills the sessions it forked too.
 */
async function launch(l: Launch, user: string, identityFile: string): Promise<SftpServer> {
  const logFile = join(l.dir, 'server.log');
  const root = join(l.dir, 'data');
  mkdirSync(root, { recursive: true });
  const knownHostsFile = join(l.dir, 'known_hosts');
  let port = 0;
  let proc: ChildProcess | undefined;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const { file, args } = l.command(port);
    const log = openSync(logFile, 'a');
    try {
      proc = spawn(file, args, { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    const p = proc;
    p.once('error', () => {}); // seen as the exit below
    const deadline = Date.now() + 20_000;
    let up = false;
    while (!up && p.exitCode === null && p.signalCode === null && Date.now() < deadline) {
      up = await bannerArrives('127.0.0.1', port, 1000);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    if (up) break;
    p.kill('SIGKILL');
    if (attempt < 5 && /in use|bind/i.test(tail(logFile))) continue;
    rmSync(l.dir, { recursive: true, force: true });
    throw new Error(`${l.name} did not answer on 127.0.0.1:${port} (exit ${p.exitCode ?? p.signalCode}):\n${tail(logFile)}`);
  }
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${l.hostKeyLine}\n`);
  const server = proc!;
  const exited = new Promise<void>((res) => {
    if (server.exitCode !== null || server.signalCode !== null) res();
    else server.once('exit', () => res());
  });
  return {
    name: l.name,
    host: '127.0.0.1',
    port,
    user,
    identityFile,
    knownHostsFile,
    root,
    url: (path) => `sftp://${user}@127.0.0.1:${port}${path}`,
    flags: ['--identity', identityFile, '--known-hosts', knownHostsFile],
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async dispose() {
      await stopServer(server, exited);
      rmSync(l.dir, { recursive: true, force: true });
    },
  };
}

/** What fur makes of a server's announcements: the capabilities of a destination on it, and its channels' window. */
export async function announced(server: SftpServer): Promise<{ capabilities: Capabilities; window: number }> {
  const dest = (await openDestination(server.url(server.root), { identity: server.identityFile, knownHosts: server.knownHostsFile })) as SftpDestination;
  try {
    return { capabilities: dest.capabilities, window: dest.pool.lanes[0]!.window };
  } finally {
    await dest.close();
  }
}

/** A folder for a server with a client key in it. */
async function serverDir(prefix: string): Promise<{ dir: string; identityFile: string; user: string }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, identityFile: await keyPair(join(dir, 'id_ed25519'), 'fur-test-client'), user: userInfo().username };
}

export interface ParamikoOptions {
  /** every write carrying `from` stores `to` in its place (same length) and still answers OK */
  mangle?: { from: Uint8Array; to: Uint8Array };
}

/** A Paramiko SFTP server (python3-paramiko): no fsync@openssh.com, no limits@openssh.com, no posix-rename announced. */
export async function startParamiko(opts: ParamikoOptions = {}): Promise<SftpServer> {
  const { dir, identityFile, user } = await serverDir('fur-paramiko-');
  const hostKey = await keyPair(join(dir, 'host_ed25519'), 'fur-test-host');
  const mangle = opts.mangle ? ['--mangle', `${Buffer.from(opts.mangle.from).toString('hex')}:${Buffer.from(opts.mangle.to).toString('hex')}`] : [];
  return launch({
    name: 'Paramiko',
    dir,
    hostKeyLine: keyLine(readFileSync(`${hostKey}.pub`, 'utf8')),
    command: (port) => ({
      file: PYTHON,
      args: [PARAMIKO_SFTP, '--port', String(port), '--root', join(dir, 'data'), '--host-key', hostKey, '--authorized-key', `${identityFile}.pub`, ...mangle],
    }),
  }, user, identityFile);
}

/**
 * dropbear (Debian's dropbear-bin) running OpenSSH's sftp-server for the sftp subsystem. dropbear
 * reads the login user's ~/.ssh/authorized_keys and has no option to read another file, so it
 * runs in a mount namespace of its own (unshare, as root) where a folder of the test is mounted
 * over that home: the machine's own authorized_keys are neither read nor touched.
 */
export async function startDropbear(): Promise<SftpServer> {
  if (process.getuid?.() !== 0) throw new Error('the dropbear server needs root (it mounts a test home over the login user\'s, in a mount namespace of its own)');
  const { dir, identityFile, user } = await serverDir('fur-dropbear-');
  const home = join(dir, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700);
  writeFileSync(join(home, '.ssh', 'authorized_keys'), readFileSync(`${identityFile}.pub`), { mode: 0o600 });
  const hostKey = join(dir, 'host_ed25519.dropbear');
  const made = await runOk(DROPBEARKEY, ['-t', 'ed25519', '-f', hostKey]);
  const pub = made.stdout.toString('utf8').split('\n').find((l) => l.startsWith('ssh-ed25519 '));
  if (!pub) throw new Error(`dropbearkey printed no public key:\n${made.stdout.toString('utf8')}`);
  return launch({
    name: 'dropbear + OpenSSH sftp-server',
    dir,
    hostKeyLine: keyLine(pub),
    command: (port) => ({
      file: UNSHARE,
      // -F foreground, -E log to stderr, -s keys only, -m no motd; the window stays dropbear's default (24 KiB)
      args: ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" "$1" && exec "$2" -F -E -s -m -p "127.0.0.1:$3" -r "$4" -P "$5"',
        home, userInfo().homedir, DROPBEAR, String(port), hostKey, join(dir, 'dropbear.pid')],
    }),
  }, user, identityFile);
}

export interface ProftpdOptions {
  /**
   * AllowOverwrite (default true, as Debian's proftpd.conf has it; ProFTPD's own default is off):
   * off, a file that exists is opened for writing by nobody
   */
  allowOverwrite?: boolean;
}

/**
 * ProFTPD with mod_sftp, configured as Debian's proftpd.conf and sftp.conf templates suggest
 * (AllowOverwrite on, keys in RFC 4716 form); root may log in with its key.
 */
export async function startProftpdSftp(opts: ProftpdOptions = {}): Promise<SftpServer> {
  const proftpd = proftpdRoot();
  const { dir, identityFile, user } = await serverDir('fur-proftpd-sftp-');
  const hostKey = await keyPair(join(dir, 'host_ed25519'), 'fur-test-host');
  const keys = join(dir, 'authorized');
  mkdirSync(keys);
  // mod_sftp reads authorized keys in RFC 4716 form only
  writeFileSync(join(keys, user), (await runOk(SSH_KEYGEN, ['-e', '-f', `${identityFile}.pub`])).stdout);
  const config = join(dir, 'proftpd.conf');
  const group = (await runOk('id', ['-gn'])).stdout.toString('utf8').trim();
  return launch({
    name: 'ProFTPD mod_sftp',
    dir,
    hostKeyLine: keyLine(readFileSync(`${hostKey}.pub`, 'utf8')),
    command: (port) => {
      writeFileSync(config, [
        `ModulePath ${proftpd.modules}`,
        'LoadModule mod_sftp.c',
        'ServerType standalone',
        'ServerName "fur interop"',
        'DefaultAddress 127.0.0.1',
        'SocketBindTight on',
        'UseIPv6 off',
        `Port ${port}`,
        `User ${user}`,
        `Group ${group}`,
        'RootLogin on',
        'UseFtpUsers off',
        'RequireValidShell off',
        'AuthOrder mod_auth_unix.c',
        'AuthPAM off',
        'UseReverseDNS off',
        'WtmpLog off',
        'TransferLog none',
        'DelayTable none',
        `PidFile ${join(dir, 'proftpd.pid')}`,
        `ScoreboardFile ${join(dir, 'proftpd.scoreboard')}`,
        'MaxInstances 200',
        'Umask 022 022',
        `AllowOverwrite ${opts.allowOverwrite === false ? 'off' : 'on'}`,
        'SFTPEngine on',
        `SFTPLog ${join(dir, 'sftp.log')}`,
        `SFTPHostKey ${hostKey}`,
        `SFTPAuthorizedUserKeys file:${keys}/%u`,
        'SFTPAuthMethods publickey',
        'SFTPKeyBlacklist none',
        'SFTPCompression off',
        '<Limit ALL>',
        '  AllowAll',
        '</Limit>',
      ].join('\n') + '\n');
      return { file: proftpd.binary, args: ['-n', '-c', config] };
    },
  }, user, identityFile);
}
