/**
 * The system's OpenSSH as fur's SSH: `ssh -s HOST sftp` processes, fur's own SFTP client
 * (sftp-client.ts) on their stdin and stdout. ssh encrypts in C in its own process (off fur's
 * thread, on another core), and it honours the user's configuration: host aliases, ProxyJump,
 * certificates, the agent, hardware keys, Kerberos, known_hosts with OpenSSH's own checks.
 * fur's options map onto ssh's (--identity → -i, --known-hosts → UserKnownHostsFile,
 * --accept-new-host-key → StrictHostKeyChecking=accept-new, --ssh-config → -F); the URL's user
 * and port are passed only when the URL names them, so the configuration decides otherwise.
 *
 * One connection is one ssh process, a ControlMaster whose socket lives in a private temporary
 * directory; each further channel on it is an ssh that hands its pipes to the master over that
 * socket (no handshake, no login of its own: a hardware key is touched once per connection).
 *
 * What ssh says on its stderr when it fails becomes one FurError with the tag the builtin
 * transport would give (host-key-changed, auth-failed, connect-failed…), so retries and exit
 * codes treat both alike.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
// ssh2 is CommonJS: its utilities are reachable through the default export only.
import ssh2 from 'ssh2';
import { FurError } from '../errors.js';
import { hostKeyChangedError, hostName, unknownHostKeyError } from './known-hosts.js';
import { watchSession, type SftpChannel, type SftpSession, type SshClient } from './sftp-channel.js';
import { SftpClient } from './sftp-client.js';
import type { SftpConnectOptions } from './sftp-connect.js';
import type { SshLikeUrl } from './url.js';

export interface OpensshOptions {
  /**
   * Which SSH: 'openssh' runs the system's `ssh`; 'builtin' is ssh2 inside fur; 'auto' takes
   * OpenSSH where an `ssh` program is on PATH and no password or passphrase variable is named
   * (those are the builtin's ways). Default 'builtin' (the CLI's default is 'auto').
   */
  ssh?: 'openssh' | 'builtin' | 'auto';
  /** an ssh_config file, given to ssh as -F (default: ssh's own, ~/.ssh/config and the system's) */
  sshConfig?: string;
  /** the ssh program and any leading arguments (default: `ssh` from PATH); tests use a stand-in */
  sshCommand?: readonly string[];
  /**
   * Several SFTP channels on one SSH connection (default true): the first ssh is a ControlMaster
   * (its socket in a private temporary directory), further channels' ssh processes go through it.
   * false: every channel is an ssh process with a connection of its own.
   */
  sshMux?: boolean;
}

/**
 * OpenSSH's server gives a session channel a 2 MiB window; it cannot be seen through ssh's
 * pipes. (ssh reads ahead up to one window from its stdin.)
 */
const OPENSSH_WINDOW = 2 * 1024 * 1024;
/**
 * Round trips from starting ssh to a ready SFTP channel: TCP connect, version and key exchange
 * (2), service request, the "none" and public key authentication requests (2), the session
 * channel, the subsystem (its window opens only then), INIT/VERSION and limits@openssh.com.
 * The time it took divided by this bounds the round trip from above (process start and crypto
 * add a little) before any request is timed.
 */
const SETUP_ROUND_TRIPS = 10;
/** how long a closing ssh may take to leave before it is told to (SIGTERM) */
const CLOSE_BOUND_MS = 2000;
/** the end of ssh's error output that is kept (its messages are a few lines) */
const STDERR_KEPT = 16 * 1024;

/** The `ssh` program on PATH, or null. */
export function findSsh(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'ssh');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The transport `opts` ask for, 'auto' decided: OpenSSH where ssh is found, unless a password or
 * passphrase variable is named (only the builtin takes those). Contradictions are usage errors.
 */
export function chosenSsh(opts: OpensshOptions & Pick<SftpConnectOptions, 'passwordEnv' | 'passphraseEnv'>): 'openssh' | 'builtin' {
  const secret = opts.passwordEnv !== undefined ? '--password-env' : opts.passphraseEnv !== undefined ? '--passphrase-env' : undefined;
  const available = opts.sshCommand !== undefined || findSsh() !== null;
  const ssh = opts.ssh === 'auto' ? (opts.sshConfig !== undefined || (secret === undefined && available) ? 'openssh' : 'builtin') : opts.ssh ?? 'builtin';
  const bad = (message: string, setting: string): FurError => new FurError('bad-option', message, { setting });
  if (ssh === 'builtin' && opts.sshConfig !== undefined) {
    throw bad('--ssh-config is read by OpenSSH\'s ssh, which --ssh builtin does not use; leave out one of them', '--ssh-config');
  }
  if (ssh === 'openssh' && secret !== undefined) {
    throw bad(`${secret} works with --ssh builtin only: OpenSSH takes no password or passphrase from fur; use a key in ssh-agent (or one without a passphrase, --identity or IdentityFile in your ssh configuration), or --ssh builtin`, secret);
  }
  if (ssh === 'openssh' && !available) {
    throw new FurError('ssh-not-found', `no ssh program on PATH${opts.sshConfig !== undefined ? ' (--ssh-config needs it)' : ''}; install OpenSSH's client or use --ssh builtin`, {});
  }
  return ssh;
}

/** `user@host:port` as ssh is told it: only the parts the URL names. */
function whereOf(target: SshLikeUrl<'sftp'>): string {
  return `${target.userGiven === false ? '' : `${target.user}@`}${target.host.includes(':') ? `[${target.host}]` : target.host}${target.portGiven === false ? '' : `:${target.port}`}`;
}

/** An ssh_config value, quoted when it holds a space (ssh splits option values on them). */
function value(v: string): string {
  return /[\s"]/.test(v) ? `"${v.replace(/(["\\])/g, '\\$1')}"` : v;
}

/** ssh's arguments for an SFTP session to `target`; `extra`: more options (multiplexing). */
export function sshArgs(target: SshLikeUrl<'sftp'>, opts: SftpConnectOptions & OpensshOptions, extra: readonly string[] = []): string[] {
  const o = (setting: string): string[] => ['-o', setting];
  const args: string[] = [];
  if (opts.sshConfig !== undefined) args.push('-F', opts.sshConfig);
  // no prompts (fur runs unattended; a prompt would hang the run), no terminal, no forwardings
  args.push('-T', ...o('BatchMode=yes'), ...o('ForwardX11=no'), ...o('ForwardAgent=no'), ...o('ClearAllForwardings=yes'), ...o('PermitLocalCommand=no'));
  if (opts.identity !== undefined) args.push('-i', opts.identity);
  if (opts.knownHosts !== undefined) args.push(...o(`UserKnownHostsFile=${value(opts.knownHosts)}`));
  if (opts.acceptNewHostKey) args.push(...o('StrictHostKeyChecking=accept-new'));
  if (opts.agent === false) args.push(...o('IdentityAgent=none'));
  else if (typeof opts.agent === 'string') args.push(...o(`IdentityAgent=${value(opts.agent)}`));
  const timeoutS = Math.max(1, Math.ceil((opts.connectTimeoutMs ?? 20_000) / 1000));
  args.push(...o(`ConnectTimeout=${timeoutS}`));
  // a dead link must end the run (it resumes on a new connection), as the builtin's keepalive does
  const keepaliveS = Math.ceil((opts.keepaliveMs ?? 15_000) / 1000);
  if (keepaliveS > 0) args.push(...o(`ServerAliveInterval=${keepaliveS}`), ...o('ServerAliveCountMax=3'));
  args.push(...extra);
  if (target.userGiven !== false) args.push('-l', target.user);
  if (target.portGiven !== false) args.push('-p', String(target.port));
  args.push('-s', '--', target.host, 'sftp');
  return args;
}

/**
 * Start ssh and an SFTP session over it. Resolves once the session answered INIT (and
 * limits@openssh.com); rejects with what ssh said, as one FurError, if it ends before.
 */
export async function connectOpenssh(
  target: SshLikeUrl<'sftp'>, opts: SftpConnectOptions & OpensshOptions = {},
  onAuthenticated?: (client: SshClient, rttBoundMs: number) => void,
): Promise<SftpSession> {
  if (opts.sshConfig !== undefined && !existsSync(opts.sshConfig)) {
    throw new FurError('bad-option', `--ssh-config ${opts.sshConfig}: no such file`, { setting: '--ssh-config', value: opts.sshConfig });
  }
  if (opts.identity !== undefined) {
    try {
      accessSync(opts.identity, constants.R_OK);
    } catch (e) {
      throw new FurError('bad-identity', `cannot read identity file ${opts.identity}: ${(e as Error).message}; check the path given to --identity`, { file: opts.identity }, { cause: e });
    }
  }
  const started = performance.now();
  // a private directory for the control socket of this connection's master (mode 700)
  const muxDir = (opts.sshMux ?? true) ? mkdtempSync(join(tmpdir(), 'fur-ssh-')) : undefined;
  const control = muxDir && join(muxDir, 'master');
  const master = new SshProcess(target, opts, control ? ['-o', 'ControlMaster=yes', '-o', `ControlPath=${value(control)}`, '-o', 'ControlPersist=no'] : []);
  try {
    await master.start(opts.connectTimeoutMs ?? 20_000);
  } catch (e) {
    if (muxDir) rmSync(muxDir, { recursive: true, force: true });
    throw e;
  }
  const client = new OpensshConnection(master, target, opts, control, muxDir);
  const session: SftpSession = { client, sftp: master.sftp, serverSoftware: '', display: target.display };
  watchSession(session);
  onAuthenticated?.(client, (performance.now() - started) / SETUP_ROUND_TRIPS);
  return session;
}

/**
 * One SSH connection: an ssh process and its SFTP session, and, multiplexed (sshMux), the
 * sessions of further channels: an ssh for each that hands its pipes to the first over the
 * control socket, so they share its connection (no handshake of their own; the first encrypts).
 */
class OpensshConnection extends EventEmitter implements SshClient {
  readonly maxChannels: number;
  private readonly channels = new Set<SshProcess>();

  constructor(
    private readonly master: SshProcess, private readonly target: SshLikeUrl<'sftp'>,
    private readonly opts: SftpConnectOptions & OpensshOptions, private readonly control?: string, private readonly muxDir?: string,
  ) {
    super();
    this.maxChannels = control ? Infinity : 1;
    master.onExit((e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
      this.emit('close');
    });
  }

  async openChannel(): Promise<SftpChannel> {
    if (!this.control) throw new Error('an ssh process without a control socket carries one SFTP channel');
    const proc = new SshProcess(this.target, this.opts, ['-o', 'ControlMaster=no', '-o', `ControlPath=${value(this.control)}`]);
    this.channels.add(proc);
    await proc.start(this.opts.connectTimeoutMs ?? 20_000);
    return proc.sftp;
  }

  cork(): void {
    this.master.stdin.cork();
    for (const c of this.channels) c.stdin.cork();
  }

  uncork(): void {
    this.master.stdin.uncork();
    for (const c of this.channels) c.stdin.uncork();
  }

  /** the channels' sessions end first, then the master's */
  async close(): Promise<void> {
    await Promise.all([...this.channels].map((c) => c.close()));
    await this.master.close();
    if (this.muxDir) rmSync(this.muxDir, { recursive: true, force: true });
  }
}

/** One ssh process running the sftp subsystem, and fur's SFTP client on its pipes. */
class SshProcess {
  readonly sftp: SftpClient;
  /** resolves with the FurError that explains the exit */
  readonly ended: Promise<FurError>;
  /** the session is up: a failure from now on is a lost connection, not a refused one */
  private ready = false;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly where: string;
  private stderr = '';
  private exited = false;
  private closing = false;
  /** why fur stopped ssh before its session was ready */
  private stopped?: string;
  private readonly exitListeners: Array<(e: FurError) => void> = [];

  constructor(private readonly target: SshLikeUrl<'sftp'>, private readonly opts: SftpConnectOptions & OpensshOptions, control: string[]) {
    this.where = whereOf(target);
    const [cmd, ...lead] = opts.sshCommand ?? [findSsh() ?? 'ssh'];
    const child = this.child = spawn(cmd!, [...lead, ...sshArgs(target, opts, control)], {
      // its own session: a Ctrl-C at fur's terminal is fur's to handle (it finishes what is
      // queued, over these connections), not ssh's to die of
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.sftp = new SftpClient(child.stdin, child.stdout, { window: OPENSSH_WINDOW });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      this.stderr = (this.stderr + s).slice(-STDERR_KEPT);
    });
    // writes after ssh is gone fail with EPIPE; its exit says why
    child.stdin.on('error', () => undefined);
    let spawnError: Error | undefined;
    child.once('error', (e) => { spawnError = e; });
    this.ended = new Promise((resolve) => {
      // 'close': ssh has exited and its pipes are drained (its last words are in)
      child.once('close', (code, signal) => {
        this.exited = true;
        const e = this.explain(code, signal, spawnError);
        resolve(e);
        if (this.closing) return;
        this.sftp.fail(e);
        for (const l of this.exitListeners) l(e);
      });
    });
  }

  get stdin(): ChildProcessWithoutNullStreams['stdin'] {
    return this.child.stdin;
  }

  /** `listener` learns why ssh ended, unless fur ended it */
  onExit(listener: (e: FurError) => void): void {
    this.exitListeners.push(listener);
  }

  /** The SFTP session is up, or the refusal (what ssh said, as one FurError). */
  async start(timeoutMs: number): Promise<void> {
    const timer = setTimeout(() => this.stop(`timed out after ${timeoutMs / 1000} s`), timeoutMs);
    try {
      await this.sftp.start();
    } catch (e) {
      // ssh ended (the session never started: its exit says why) or spoke something else than SFTP
      this.stop((e as Error).message);
      throw await this.ended;
    } finally {
      clearTimeout(timer);
    }
    this.ready = true;
  }

  /**
   * End the session (EOF on ssh's stdin) and wait for ssh to leave: the server then has every
   * request done, and ssh's CPU time is counted as fur's child's.
   */
  async close(): Promise<void> {
    this.closing = true;
    if (this.exited) return;
    this.child.stdin.end();
    // an ssh whose server never closes its side is told to go, then made to
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      if (await within(this.ended, CLOSE_BOUND_MS)) return;
      this.child.kill(signal);
    }
    await this.ended;
  }

  /** Setting up failed on fur's side (`why`: it took too long, …): stop ssh; the refusal says so. */
  stop(why: string): void {
    if (this.exited) return;
    this.stopped ??= why;
    this.child.kill('SIGTERM');
  }

  /** What ssh's exit means, from what it said. */
  private explain(code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): FurError {
    const fields = { where: this.where, exitCode: code, signal };
    if (spawnError) {
      return new FurError('ssh-not-found',
        `cannot run ${this.opts.sshCommand?.[0] ?? 'ssh'} (${spawnError.message}); install OpenSSH's client or use --ssh builtin`,
        fields, { cause: spawnError });
    }
    const said = lines(this.stderr);
    if (this.stopped !== undefined && !this.ready) {
      return sshRefusal(this.stderr, this.target, this.opts, fields) ?? new FurError('connect-failed',
        `connecting to ${this.where} with ssh failed: ${this.stopped}${said.length ? ` (ssh said: ${said.at(-1)})` : ''}; check the host, the port, any ProxyJump host and any firewall in between`,
        fields);
    }
    if (this.ready) {
      const why = said.at(-1) ?? (signal ? `ssh ended by ${signal}` : `ssh exited with status ${code}`);
      return new FurError('connection-lost', `connection to ${this.where} was lost (${why}); check the network and the server, then run again to resume`, fields);
    }
    return sshRefusal(this.stderr, this.target, this.opts, fields) ?? new FurError('connect-failed',
      `ssh to ${this.where} ended before the SFTP session started (${said.at(-1) ?? (signal ? `ended by ${signal}` : `exit status ${code}`)}); check that the server enables sftp, and your ssh configuration`,
      fields);
  }
}

/** true if `p` settles within `ms` */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => { clearTimeout(timer); resolve(true); });
  });
}

function lines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !/^@+$/.test(l));
}

/**
 * ssh's own messages (OpenSSH 9) when it cannot set up a session, as FurErrors: the tags the
 * builtin transport gives the same failures, so retries and exit codes are the same.
 */
export function sshRefusal(stderr: string, target: SshLikeUrl<'sftp'>, opts: SftpConnectOptions & OpensshOptions, fields: Record<string, unknown>): FurError | undefined {
  const said = lines(stderr);
  const where = whereOf(target);
  // the name known_hosts files a host under, as far as fur knows it (the configuration may name another)
  const filedAs = target.portGiven === false ? target.host : hostName(target.host, target.port);
  const line = (re: RegExp): RegExpExecArray | null => {
    for (const l of said) { const m = re.exec(l); if (m) return m; }
    return null;
  };
  const config = opts.sshConfig ? `--ssh-config ${opts.sshConfig}` : 'your ssh configuration';
  const fp = /key sent by the remote host is\s+(\S+?)\.?\s*$/m.exec(stderr)?.[1];
  const fpType = /The fingerprint for the (\S+) key sent by the remote host/.exec(stderr)?.[1];
  const offered = fp ? `${fpType ? `${fpType} ` : ''}${fp}` : undefined;
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|REVOKED HOST KEY/.test(stderr)) {
    const offending = /Offending \S+ key in (.+):(\d+)/.exec(stderr);
    const name = line(/Host key for (\S+) has changed/)?.[1] ?? filedAs;
    const file = offending?.[1] ?? opts.knownHosts ?? 'your known_hosts';
    if (/REVOKED HOST KEY/.test(stderr)) {
      return new FurError('host-key-revoked', `host key of ${name}${offered ? ` (${offered})` : ''} is marked @revoked in ${file}; the server must get a new key`, { ...fields, knownHosts: file });
    }
    return hostKeyChangedError(name, offered ?? 'another key', file, offending ? Number(offending[2]) : undefined, fields);
  }
  const unknown = line(/No (\S+) host key is known for (\S+) and you have requested strict checking/);
  if (unknown || said.includes('Host key verification failed.')) {
    return unknownHostKeyError(unknown?.[2] ?? filedAs, offered, opts.knownHosts ?? 'your known_hosts files (UserKnownHostsFile)', fields);
  }
  const badKey = line(/^Load key "(.+)": (.+)$/) ?? line(/^Warning: Identity file (.+) not accessible: (.+?)\.?$/);
  if (badKey) {
    return new FurError('bad-identity', `identity file ${badKey[1]} cannot be used: ${badKey[2]}; check the key given to --identity or IdentityFile in ${config}`,
      { ...fields, file: badKey[1] });
  }
  const denied = line(/Permission denied \(([^)]*)\)/);
  if (denied || line(/Too many authentication failures/)) {
    if (opts.identity !== undefined && encrypted(opts.identity)) {
      // ssh in batch mode passes over a key it cannot decrypt without a word
      return new FurError('bad-identity',
        `authentication as ${where} failed: identity file ${opts.identity} is encrypted, and ssh cannot ask for its passphrase; load it into ssh-agent (ssh-add ${opts.identity}), or use --ssh builtin with --passphrase-env`,
        { ...fields, file: opts.identity });
    }
    return new FurError('auth-failed',
      `authentication as ${where} failed${denied ? ` (the server accepts: ${denied[1]})` : ''}; check the user name and the key (--identity, a key in ssh-agent, or IdentityFile in ${config})`,
      { ...fields, serverAllows: denied?.[1]?.split(',') });
  }
  const badConfig = line(/^(.+): line (\d+): (.+)$/) ?? line(/^(?:command-line|command line): (.+)$/) ?? line(/Bad configuration option|Can't open user config file|Unsupported option/);
  if (badConfig) {
    return new FurError('bad-ssh-config', `ssh refuses ${config}: ${badConfig[0]}; fix it`, fields);
  }
  const unreachable = line(/Could not resolve hostname (\S+): (.+)$/) ?? line(/connect to host (\S+) port (\d+): (.+)$/)
    ?? line(/(kex_exchange_identification|Connection closed by|Connection reset by|Connection timed out during banner exchange|Connection refused)(.*)$/);
  if (unreachable) {
    return new FurError('connect-failed', `cannot connect to ${where} with ssh (${unreachable[0]}); check the host, the port, any ProxyJump host and ${config}`, fields);
  }
  if (line(/subsystem request failed/)) {
    return new FurError('connect-failed', `${where} refused the SFTP subsystem; check that the server enables sftp for this user`, fields);
  }
  return undefined;
}

/** A private key file that needs a passphrase to be read. */
function encrypted(file: string): boolean {
  try {
    const parsed = ssh2.utils.parseKey(readFileSync(file));
    return parsed instanceof Error && /encrypted|passphrase/i.test(parsed.message);
  } catch {
    return false;
  }
}
