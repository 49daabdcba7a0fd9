import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
// ssh2 is CommonJS: its classes are reachable through the default export only.
import ssh2, { type AuthenticationType, type Client, type ConnectConfig } from 'ssh2';
import { FurError } from '../errors.js';
import { algorithmsFor, appendHostKey, hostKeyChangedError, hostName, judgeHostKey, keyTypeOf, knownKeyTypes, readKnownHosts, unknownHostKeyError } from './known-hosts.js';
import { watchSession, type SftpSession, type SshClient } from './sftp-channel.js';
import { Ssh2Channel, Ssh2Client } from './sftp-ssh2.js';
import type { SshLikeUrl } from './url.js';

export interface SftpConnectOptions {
  /** private key file; when absent, ~/.ssh/id_ed25519, id_ecdsa and id_rsa are tried if present */
  identity?: string;
  /** name of an environment variable holding the passphrase of `identity` */
  passphraseEnv?: string;
  /** ssh-agent socket; default $SSH_AUTH_SOCK; false to not use an agent */
  agent?: string | false;
  /** name of an environment variable holding the password (the password itself never appears in options) */
  passwordEnv?: string;
  /** default ~/.ssh/known_hosts */
  knownHosts?: string;
  /** trust and record the key of a host that known_hosts does not list yet (never a changed key) */
  acceptNewHostKey?: boolean;
  /** limit for TCP connect + SSH handshake + authentication, ms (default 20 s; --connect-timeout) */
  connectTimeoutMs?: number;
  /** SSH keepalive interval, ms; a dead link is declared after 3 unanswered (default 15 s; 0 = off) */
  keepaliveMs?: number;
}

interface AuthMethod {
  /** SSH method the server must allow */
  wire: 'publickey' | 'password';
  /** what to tell a person: `publickey (~/.ssh/id_ed25519)`, `password ($FUR_PW)` */
  label: string;
  /** the ssh2 auth method object; built late so the password lives only inside ssh2 */
  build(user: string): object;
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/**
 * Round trips an SSH connection takes until it is authenticated: TCP connect, version and
 * algorithm exchange, key exchange, service request, and a public key offered then signed (one
 * fewer on a link whose relay answers the TCP connect itself). Its duration divided by this
 * bounds the round trip from above (the crypto adds a little) before any request is timed.
 */
const HANDSHAKE_ROUND_TRIPS = 5;

/**
 * Connect with ssh2, authenticate and open one SFTP channel. `onAuthenticated` is called the
 * moment the connection is authenticated, right after the channel is asked for, with the
 * handshake's bound on the round trip: a caller that wants more channels on the connection can
 * ask for them alongside, not round trips later.
 */
export async function connectSftp(
  target: SshLikeUrl<'sftp'>, opts: SftpConnectOptions = {},
  onAuthenticated?: (client: SshClient, rttBoundMs: number) => void,
): Promise<SftpSession> {
  const where = `${target.user}@${target.host}:${target.port}`;
  const methods = authMethods(target, opts);
  if (methods.length === 0) {
    throw new FurError('auth-failed',
      `no way to authenticate as ${where}: pass a key with --identity, run ssh-agent (SSH_AUTH_SOCK), or name a password variable with --password-env`,
      { user: target.user, host: target.host, port: target.port, tried: [] });
  }
  const knownHostsFile = opts.knownHosts ?? join(homedir(), '.ssh', 'known_hosts');
  const entries = await readKnownHosts(knownHostsFile);
  const preferred = algorithmsFor(knownKeyTypes(entries, target.host, target.port));

  const client = new ssh2.Client();
  let hostKeyError: FurError | undefined;
  const tried: string[] = [];
  let serverAllows: string[] | undefined;

  const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
    const verdict = judgeHostKey(entries, target.host, target.port, key);
    const name = hostName(target.host, target.port);
    const fp = `${keyTypeOf(key)} ${fingerprint(key)}`;
    const fields = { host: target.host, port: target.port, knownHosts: knownHostsFile, fingerprint: fp };
    switch (verdict.status) {
      case 'known':
        return verify(true);
      case 'changed':
        hostKeyError = hostKeyChangedError(name, fp, knownHostsFile, verdict.line, fields);
        return verify(false);
      case 'revoked':
        hostKeyError = new FurError('host-key-revoked',
          `host key of ${name} (${fp}) is marked @revoked at line ${verdict.line} of ${knownHostsFile}; the server must get a new key`,
          { ...fields, line: verdict.line });
        return verify(false);
      case 'unknown':
        if (!opts.acceptNewHostKey) {
          hostKeyError = unknownHostKeyError(name, fp, knownHostsFile, fields);
          return verify(false);
        }
        appendHostKey(knownHostsFile, target.host, target.port, key).then(
          () => verify(true),
          (e: FurError) => { hostKeyError = e; verify(false); },
        );
    }
  };

  let next = 0;
  const authHandler = (left: AuthenticationType[] | null, _partial: boolean | null, cb: (m: object | false) => void): void => {
    if (left) serverAllows = left;
    while (next < methods.length) {
      const m = methods[next++];
      if (left && !left.includes(m.wire)) continue;
      tried.push(m.label);
      return cb(m.build(target.user));
    }
    cb(false);
  };

  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    readyTimeout: opts.connectTimeoutMs ?? 20_000,
    keepaliveInterval: opts.keepaliveMs ?? 15_000,
    keepaliveCountMax: 3,
    hostVerifier,
    authHandler: authHandler as ConnectConfig['authHandler'],
  };
  // Ask first for the key types known_hosts already holds, so a host with several keys is not
  // reported unknown just because it offered a type we have not recorded. ssh2's `prepend`
  // skips algorithms already listed, hence remove first (keys are applied in this order).
  if (preferred.length) {
    config.algorithms = {
      serverHostKey: { remove: preferred, prepend: preferred } as unknown as NonNullable<ConnectConfig['algorithms']>['serverHostKey'],
    };
  }

  return new Promise<SftpSession>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      client.end();
      reject(e);
    };
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (hostKeyError) return fail(hostKeyError);
      if (err.level === 'client-authentication') {
        return fail(new FurError('auth-failed',
          `authentication as ${where} failed; tried ${tried.join(', ') || 'nothing the server accepts'}${serverAllows ? ` (server accepts: ${serverAllows.join(', ')})` : ''}; check the user name, key or password`,
          { user: target.user, host: target.host, port: target.port, tried: [...tried], serverAllows }, { cause: err }));
      }
      fail(connectError(where, err, opts.connectTimeoutMs ?? 20_000));
    });
    client.on('close', () => {
      fail(hostKeyError ?? new FurError('connect-failed',
        `connection to ${where} closed during the SSH handshake; check that it is an SSH server and that it accepts ${target.user}`,
        { host: target.host, port: target.port }));
    });
    client.on('ready', () => {
      const handshakeMs = performance.now() - started;
      const ssh = new Ssh2Client(client);
      client.sftp((err, sftp) => {
        if (err) {
          return fail(new FurError('connect-failed',
            `${where} refused the SFTP subsystem (${err.message}); check that the server enables sftp for ${target.user}`,
            { host: target.host, port: target.port }, { cause: err }));
        }
        if (settled) return;
        settled = true;
        const session: SftpSession = {
          client: ssh,
          sftp: new Ssh2Channel(sftp),
          serverSoftware: String((client as unknown as { _remoteVer?: string })._remoteVer ?? ''),
          display: target.display,
        };
        watchSession(session);
        resolve(session);
      });
      // after the session's own channel, so that one is answered first
      onAuthenticated?.(ssh, handshakeMs / HANDSHAKE_ROUND_TRIPS);
    });
    const started = performance.now();
    client.connect(config);
    offerKeysSigned(client);
  });
}

/** Hash of each RSA signature algorithm (other key types imply theirs), as ssh2 signs them. */
const RSA_HASHES: Record<string, string> = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512', 'ssh-rsa': 'sha1' };

type SignDone = (signature: Buffer) => void;
type AuthPK = (user: string, key: unknown, keyAlgo?: string, cbSign?: (data: Buffer, done: SignDone) => void) => void;

/**
 * Offer a private key together with its signature, as OpenSSH does with keys it holds, instead
 * of ssh2's way of asking first whether the server would take the key: one round trip less per
 * connection. A server that does not take the key refuses the signed request just as it would
 * have answered the question, so ssh2 goes on to the next method as before. Keys in an agent
 * (whose signing is asynchronous) keep ssh2's way.
 */
function offerKeysSigned(client: Client): void {
  const proto = (client as unknown as { _protocol?: { authPK?: AuthPK } })._protocol;
  const authPK = proto?.authPK;
  if (!proto || typeof authPK !== 'function') return;
  proto.authPK = function (this: unknown, user, key, keyAlgo, cbSign) {
    const k = key as { isPrivateKey?: () => boolean; sign?: (data: Buffer, hash?: string) => Buffer | Error; type?: string };
    if (cbSign !== undefined || typeof keyAlgo === 'function' || typeof k?.sign !== 'function' || k.isPrivateKey?.() !== true) {
      return authPK.call(this, user, key, keyAlgo, cbSign);
    }
    authPK.call(this, user, key, keyAlgo, (data, done) => {
      const signature = k.sign!(data, RSA_HASHES[keyAlgo ?? k.type ?? '']);
      // cannot sign (not seen with a key that parsed): ask first after all, and let ssh2 report it
      if (signature instanceof Error) return authPK.call(this, user, key, keyAlgo);
      done(signature);
    });
  };
}

function connectError(where: string, err: Error & { level?: string; code?: string }, timeoutMs: number): FurError {
  const fields = { where, code: err.code };
  if (err.level === 'client-timeout') {
    return new FurError('connect-failed',
      `connecting to ${where} timed out after ${timeoutMs / 1000} s; check the host, the port and any firewall in between (--connect-timeout to wait longer)`,
      fields, { cause: err });
  }
  const hints: Record<string, string> = {
    ECONNREFUSED: 'nothing listens on that port; check the port and that sshd runs',
    ETIMEDOUT: 'no answer; check the host and any firewall in between',
    EHOSTUNREACH: 'the host is unreachable; check the network route',
    ENETUNREACH: 'the network is unreachable',
    ENOTFOUND: 'the host name does not resolve; check its spelling and DNS',
    EAI_AGAIN: 'DNS did not answer; try again or use an IP address',
    ECONNRESET: 'the server reset the connection; check that it is an SSH server and its access rules',
  };
  const hint = (err.code && hints[err.code]) || 'check the host and port';
  return new FurError('connect-failed', `cannot connect to ${where}: ${err.message}; ${hint}`, fields, { cause: err });
}

function authMethods(target: SshLikeUrl<'sftp'>, opts: SftpConnectOptions): AuthMethod[] {
  const methods: AuthMethod[] = [];
  for (const file of identityFiles(opts)) {
    const key = loadIdentity(file, opts, opts.identity !== undefined);
    if (key === undefined) continue;
    methods.push({
      wire: 'publickey',
      label: `publickey (${file})`,
      build: (username) => ({ type: 'publickey', username, key }),
    });
  }
  const agent = opts.agent === false ? undefined : (opts.agent ?? process.env.SSH_AUTH_SOCK);
  if (agent) {
    methods.push({ wire: 'publickey', label: `agent (${agent})`, build: (username) => ({ type: 'agent', username, agent }) });
  }
  if (opts.passwordEnv !== undefined) {
    const password = process.env[opts.passwordEnv];
    if (password === undefined) {
      throw new FurError('missing-password',
        `environment variable ${opts.passwordEnv} (--password-env) is not set; export the password for ${target.user}@${target.host} in it`,
        { variable: opts.passwordEnv });
    }
    methods.push({
      wire: 'password',
      label: `password ($${opts.passwordEnv})`,
      build: (username) => ({ type: 'password', username, password }),
    });
  }
  return methods;
}

function identityFiles(opts: SftpConnectOptions): string[] {
  if (opts.identity !== undefined) return [opts.identity];
  return DEFAULT_IDENTITIES.map((n) => join(homedir(), '.ssh', n)).filter((f) => existsSync(f));
}

/**
 * Load and check a private key now, so a wrong path or passphrase is reported as such rather
 * than as a failed login. Default keys that need a passphrase are skipped quietly: the agent
 * usually holds them.
 */
function loadIdentity(file: string, opts: SftpConnectOptions, explicit: boolean): Buffer | ReturnType<typeof ssh2.utils.parseKey> | undefined {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    if (!explicit) return undefined;
    throw new FurError('bad-identity', `cannot read identity file ${file}: ${(e as Error).message}; check the path given to --identity`,
      { file }, { cause: e });
  }
  const passphrase = opts.passphraseEnv !== undefined ? process.env[opts.passphraseEnv] : undefined;
  const parsed = ssh2.utils.parseKey(data, passphrase);
  if (parsed instanceof Error) {
    if (!explicit) return undefined;
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    const hint = encrypted
      ? (opts.passphraseEnv ? `check the passphrase in $${opts.passphraseEnv} (--passphrase-env)` : 'it is encrypted: name a variable holding its passphrase with --passphrase-env, or load it into ssh-agent')
      : 'it must be an OpenSSH or PEM private key';
    throw new FurError('bad-identity', `identity file ${file} cannot be used: ${parsed.message}; ${hint}`, { file }, { cause: parsed });
  }
  return parsed;
}

/** OpenSSH's fingerprint format: SHA256:base64 without padding. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}
