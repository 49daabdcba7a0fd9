/**
 * A private OpenSSH server for interop tests: Debian's /usr/sbin/sshd on 127.0.0.1 with a
 * generated config, host key and client key in a temporary directory, so tests run against
 * the real server fur meets in the field (window sizes, limits@openssh.com, error codes)
 * without touching the machine's own sshd.
 *
 * Tests run as root (CI containers): the server admits root with the generated key only.
 * Uploads can be checked independently of fur with the OpenSSH client (`exec`, `sftp`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run, runOk, type RunOptions, type RunResult } from './run.js';

export const SSHD = '/usr/sbin/sshd';
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const SSH = '/usr/bin/ssh';
const SFTP = '/usr/bin/sftp';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

export interface SshdOptions {
  /** Directory SFTP sessions start in (relative paths resolve here). Default: `<dir>/root`, created. */
  root?: string;
  /** 'internal' (default): `internal-sftp` inside sshd; 'external': /usr/lib/openssh/sftp-server. */
  sftpServer?: 'internal' | 'external';
  /** Extra sshd_config lines, appended. */
  extraConfig?: string[];
  /** sshd LogLevel (default VERBOSE). */
  logLevel?: string;
  /** How long to wait for the banner (default 15 s). */
  startTimeoutMs?: number;
}

/** What an ssh2 client needs to connect (hostVerifier can compare against `hostKeyBlob`). */
export interface SshConnectConfig {
  host: string;
  port: number;
  username: string;
  privateKey: Buffer;
}

export interface Sshd {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Client private key (OpenSSH format, ed25519). */
  readonly identityFile: string;
  /** known_hosts with this server's host key for [127.0.0.1]:port. */
  readonly knownHostsFile: string;
  /** The server's authorized_keys (the client key's line); read at every login. */
  readonly authorizedKeysFile: string;
  /** The host public key, "ssh-ed25519 AAAA…". Changes after `rotateHostKey`. */
  readonly hostKeyLine: string;
  /** The host key blob as an SSH client receives it (base64-decoded key of `hostKeyLine`). */
  readonly hostKeyBlob: Buffer;
  /** Temporary directory holding config, keys, pid file and log. */
  readonly dir: string;
  /** Where SFTP sessions start. */
  readonly root: string;
  readonly logFile: string;
  /** Process id of the listening sshd, or undefined while stopped. */
  readonly pid: number | undefined;
  connectConfig(): SshConnectConfig;
  /**
   * Stops the server. By default every session process it forked is killed too (sshd's
   * sessions live in their own sessions and outlive the listener): a crash/restart as a
   * client sees it. `dropConnections: false` stops only the listener.
   */
  stop(opts?: { dropConnections?: boolean }): Promise<void>;
  /** Stops and starts again on the same port with the same keys. */
  restart(opts?: { dropConnections?: boolean }): Promise<void>;
  /** Generates a new host key and restarts; the known_hosts file is NOT updated (a changed-host-key fault). */
  rotateHostKey(): Promise<void>;
  /** Runs a command over ssh (BatchMode, generated key, strict host checking). */
  exec(command: string | readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Runs sftp batch commands; throws on the first failing command. Returns stdout. */
  sftp(commands: readonly string[], opts?: RunOptions): Promise<string>;
  /** The server log so far. */
  log(): string;
  /** Stops the server and deletes its directory (not `root` if the caller supplied it). */
  dispose(): Promise<void>;
}

/** Port the kernel hands out as free right now (sshd binds it a moment later; start retries on a race). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} not found: install Debian's openssh-server`);
  // privilege separation directory; a fresh container has none and sshd refuses to start
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'fur-sshd-'));
  const root = resolve(opts.root ?? join(dir, 'root'));
  mkdirSync(root, { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  const identityFile = join(dir, 'id_ed25519');
  const knownHostsFile = join(dir, 'known_hosts');
  const authorizedKeys = join(dir, 'authorized_keys');
  const configFile = join(dir, 'sshd_config');
  const pidFile = join(dir, 'sshd.pid');
  const logFile = join(dir, 'sshd.log');
  const host = '127.0.0.1';
  const user = 'root';

  const keygen = (file: string, comment: string) => runOk(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  await Promise.all([keygen(hostKey, 'fur-test-host'), keygen(identityFile, 'fur-test-client')]);
  writeFileSync(authorizedKeys, readFileSync(`${identityFile}.pub`));

  let port = 0;
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let hostKeyLine = '';

  const readHostKey = () => {
    const [type, b64] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
    hostKeyLine = `${type} ${b64}`;
  };
  readHostKey();

  const writeConfig = () => {
    const sftp = opts.sftpServer === 'external' ? `${SFTP_SERVER} -d ${root}` : `internal-sftp -d ${root}`;
    const lines = [
      `Port ${port}`,
      `ListenAddress ${host}`,
      `HostKey ${hostKey}`,
      `PidFile ${pidFile}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UseDNS no',
      'PrintMotd no',
      'PrintLastLog no',
      // tests open many connections at once (parallel channels, reconnects); don't drop them
      'MaxStartups 200',
      'MaxSessions 100',
      `LogLevel ${opts.logLevel ?? 'VERBOSE'}`,
      `Subsystem sftp ${sftp}`,
      ...(opts.extraConfig ?? []),
    ];
    writeFileSync(configFile, lines.join('\n') + '\n');
    writeFileSync(knownHostsFile, `[${host}]:${port} ${hostKeyLine}\n`);
  };

  const launch = async (): Promise<void> => {
    writeConfig();
    const logFd = openSync(logFile, 'a');
    try {
      proc = spawn(SSHD, ['-D', '-e', '-f', configFile], { stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    const p = proc;
    let gone = false;
    exited = new Promise<void>((res) => p.once('exit', () => ((gone = true), res())));
    p.once('error', () => {}); // surfaced through `exit` / the banner wait
    const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
    for (;;) {
      if (gone) throw new Error(`sshd exited during start (code ${p.exitCode}):\n${tail(logFile)}`);
      if (await bannerArrives(host, port, 1000)) return;
      if (Date.now() > deadline) {
        p.kill('SIGKILL');
        throw new Error(`sshd did not answer on ${host}:${port} within ${opts.startTimeoutMs ?? 15_000} ms:\n${tail(logFile)}`);
      }
      await sleep(50);
    }
  };

  const stopListener = async (dropConnections: boolean): Promise<void> => {
    const p = proc;
    if (!p || p.pid === undefined) return;
    proc = undefined;
    await stopServer(p, exited, dropConnections);
  };

  // start, taking a new port if another process grabbed ours in the meantime
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (e) {
      if (attempt < 5 && /Address already in use|Cannot bind/.test(tail(logFile))) continue;
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  const sshArgs = (): string[] => [
    '-F', '/dev/null',
    '-i', identityFile,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=10',
  ];

  const server: Sshd = {
    host,
    get port() {
      return port;
    },
    user,
    identityFile,
    knownHostsFile,
    authorizedKeysFile: authorizedKeys,
    get hostKeyLine() {
      return hostKeyLine;
    },
    get hostKeyBlob() {
      return Buffer.from(hostKeyLine.split(' ')[1]!, 'base64');
    },
    dir,
    root,
    logFile,
    get pid() {
      return proc?.pid;
    },
    connectConfig: () => ({ host, port, username: user, privateKey: readFileSync(identityFile) }),
    async stop(o = {}) {
      await stopListener(o.dropConnections ?? true);
    },
    async restart(o = {}) {
      await stopListener(o.dropConnections ?? true);
      await launch();
    },
    async rotateHostKey() {
      await stopListener(true);
      rmSync(hostKey, { force: true });
      rmSync(`${hostKey}.pub`, { force: true });
      const known = readFileSync(knownHostsFile);
      await keygen(hostKey, 'fur-test-host-rotated');
      readHostKey();
      await launch();
      writeFileSync(knownHostsFile, known); // clients keep trusting the old key
    },
    exec(command, o = {}) {
      const cmd = typeof command === 'string' ? [command] : [...command];
      return run(SSH, [...sshArgs(), '-p', String(port), `${user}@${host}`, '--', ...cmd], { timeoutMs: 120_000, ...o });
    },
    async sftp(commands, o = {}) {
      const batch = join(dir, `batch-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
      writeFileSync(batch, commands.join('\n') + '\n');
      try {
        const r = await runOk(SFTP, [...sshArgs(), '-P', String(port), '-b', batch, `${user}@${host}`], { timeoutMs: 300_000, ...o });
        return r.stdout.toString('utf8');
      } finally {
        rmSync(batch, { force: true });
      }
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async dispose() {
      await stopListener(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Runs a command on the server over ssh (see `Sshd.exec`). */
export function sshExec(server: Sshd, command: string | readonly string[], opts?: RunOptions): Promise<RunResult> {
  return server.exec(command, opts);
}

/** Runs sftp batch commands against the server (see `Sshd.sftp`). */
export function sftpBatch(server: Sshd, commands: readonly string[], opts?: RunOptions): Promise<string> {
  return server.sftp(commands, opts);
}

/** True once a TCP connection to host:port gets an SSH identification line. */
export function bannerArrives(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host, port });
    let got = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      res(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (s: string) => {
      got += s;
      if (got.includes('\n')) done(got.startsWith('SSH-2.0-'));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

/**
 * Stops a server process (SIGTERM, SIGKILL after 5 s) and, with `sessions`, every process it
 * forked: servers run each session in a process of its own, which outlives the listener.
 */
export async function stopServer(p: ChildProcess, exited: Promise<void>, sessions = true): Promise<void> {
  // collect the session processes before the listener goes: afterwards they belong to init
  const forked = sessions && p.pid !== undefined ? descendants(p.pid) : [];
  if (p.exitCode === null && p.signalCode === null) {
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  for (const pid of forked) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await waitGone(forked, 5000);
}

/** All processes below `pid`, read from /proc (children first found, then theirs). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // the command name may contain spaces and parentheses: ppid follows the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      /* exited while we looked */
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

async function waitGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter((p) => {
      try {
        process.kill(p, 0);
        return !/^\S+ \S+ Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/\(.*\)/, 'x'));
      } catch {
        return false;
      }
    });
    if (!alive.length || Date.now() > deadline) return;
    await sleep(20);
  }
}

/** The last lines of a log file, for an error message. */
export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
