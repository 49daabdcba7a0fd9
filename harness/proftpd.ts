/**
 * A private ProFTPD (Debian's proftpd-core and proftpd-mod-crypto, unpacked: the package conflicts
 * with vsftpd) for the interop tier, with whatever module the test needs: mod_tls for FTPS,
 * mod_sftp for SFTP. Standalone on 127.0.0.1, virtual users from its own password file (no PAM,
 * no system account), each confined to its home; the files it stores belong to `uid`.
 *
 * Needs root (the tests run as root in CI): ProFTPD switches to the user's uid for each session.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackDebian, missingLibraries } from './debian.js';
import { listening, stopAll } from './daemon.js';

export const PROFTPD_PACKAGES = ['proftpd-core', 'proftpd-mod-crypto'] as const;

export interface ProftpdUser {
  name: string;
  password: string;
  /** created if missing; the user's files belong to `uid` (default 10001) */
  home: string;
  uid?: number;
}

export interface ProftpdOptions {
  /** modules to load besides the built-in ones, e.g. ['mod_tls.c'] or ['mod_sftp.c'] */
  modules: string[];
  /** the port ProFTPD listens on (127.0.0.1) */
  port: number;
  users: ProftpdUser[];
  /** configuration lines after the common ones: the modules' settings (paths may use `dir`) */
  config: (dir: string) => string[];
}

export interface Proftpd {
  /** the server's own folder: configuration, logs, password file */
  readonly dir: string;
  /** SystemLog and the modules' logs, for a failed test's message */
  log(): string;
  stop(): Promise<void>;
}

/** ProFTPD's binary and modules, unpacked once (see debian.ts). */
export function proftpdRoot(): { binary: string; modules: string } {
  const root = unpackDebian(PROFTPD_PACKAGES);
  const binary = join(root, 'usr/sbin/proftpd');
  const modules = join(root, 'usr/lib/proftpd');
  const missing = [binary, join(modules, 'mod_tls.so'), join(modules, 'mod_sftp.so')].flatMap(missingLibraries);
  if (missing.length) throw new Error(`ProFTPD needs ${[...new Set(missing)].join(', ')}: install the libraries .ci/run lists with it`);
  return { binary, modules };
}

export async function startProftpd(o: ProftpdOptions): Promise<Proftpd> {
  const { binary, modules } = proftpdRoot();
  const dir = mkdtempSync(join(tmpdir(), 'fur-proftpd-'));
  chmodSync(dir, 0o755);
  const passwd = o.users.map((u) => {
    const uid = u.uid ?? 10001;
    mkdirSync(u.home, { recursive: true });
    chownSync(u.home, uid, uid);
    const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: `${u.password}\n`, encoding: 'utf8' }).trim();
    return `${u.name}:${hash}:${uid}:${uid}::${u.home}:/bin/sh`;
  });
  writeFileSync(join(dir, 'passwd'), passwd.join('\n') + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'group'), [...new Set(o.users.map((u) => u.uid ?? 10001))].map((g) => `fur${g}:x:${g}:`).join('\n') + '\n', { mode: 0o600 });
  const log = join(dir, 'proftpd.log');
  const conf = [
    'ServerType standalone', 'ServerName "fur interop"', 'DefaultServer on', 'UseIPv6 off',
    `Port ${o.port}`, 'DefaultAddress 127.0.0.1', 'SocketBindTight on',
    'User nobody', 'Group nogroup', 'MaxInstances 60', 'Umask 022', 'AllowOverwrite on',
    `PidFile ${join(dir, 'proftpd.pid')}`, `ScoreboardFile ${join(dir, 'proftpd.scoreboard')}`,
    'DelayTable none', 'WtmpLog off', 'UseReverseDNS off',
    `SystemLog ${log}`, `TransferLog ${join(dir, 'xfer.log')}`,
    // only the users of the password file: no PAM, no system accounts
    'AuthOrder mod_auth_file.c', `AuthUserFile ${join(dir, 'passwd')}`, `AuthGroupFile ${join(dir, 'group')}`,
    'RequireValidShell off', 'DefaultRoot ~',
    `ModulePath ${modules}`, ...o.modules.map((m) => `LoadModule ${m}`),
    ...o.config(dir),
  ].join('\n') + '\n';
  writeFileSync(join(dir, 'proftpd.conf'), conf);
  const child = spawn(binary, ['--nodaemon', '--config', join(dir, 'proftpd.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const logs = () => {
    let text = stderr;
    for (const f of ['proftpd.log', 'tls.log', 'sftp.log']) { try { text += readFileSync(join(dir, f), 'utf8'); } catch { /* not written */ } }
    return text;
  };
  await listening(o.port, child, 'proftpd', logs);
  return {
    dir,
    log: logs,
    async stop() {
      await stopAll(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
