import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSftpServer, type SftpServer, type SftpServerOptions } from '../../src/demo/sftp-server.js';
import type { Destination } from '../../src/transport/destination.js';
import { isFurError, type FurError, type FurErrorTag } from '../../src/errors.js';

/** A scratch directory removed by the returned cleanup. */
export async function scratch(prefix = 'fur-transport-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export const PASSWORD_ENV = 'FUR_TEST_SFTP_PASSWORD';
export const PASSWORD = 'correct horse battery staple';

export interface ServerFixture {
  server: SftpServer;
  /** the directory the server serves as `/` */
  root: string;
  /** a known_hosts file that lists the server */
  knownHosts: string;
  /** options that log in with the password */
  options: { passwordEnv: string; knownHosts: string; agent: false };
  cleanup(): Promise<void>;
}

/** An in-process SFTP server over a fresh directory, with a known_hosts file that trusts it. */
export async function sftpFixture(extra: Partial<SftpServerOptions> = {}): Promise<ServerFixture> {
  const root = await scratch('fur-sftp-root-');
  const home = await scratch('fur-sftp-home-');
  process.env[PASSWORD_ENV] = PASSWORD;
  const server = await startSftpServer({ root: root.dir, password: PASSWORD, ...extra });
  const knownHosts = join(home.dir, 'known_hosts');
  await writeFile(knownHosts, `${server.hostKeyLine}\n`);
  return {
    server,
    root: root.dir,
    knownHosts,
    options: { passwordEnv: PASSWORD_ENV, knownHosts, agent: false },
    cleanup: async () => {
      await server.close();
      await root.cleanup();
      await home.cleanup();
    },
  };
}

/**
 * A folder holding an executable `ssh`: the stand-in for OpenSSH's client (fake-ssh.ts), logging
 * in with `password`. Put it first on PATH, or name `<dir>/ssh` as the transport's sshCommand.
 */
export async function fakeSshDir(dir: string, password: string): Promise<string> {
  const fake = join(dirname(fileURLToPath(import.meta.url)), 'fake-ssh.js');
  await writeFile(join(dir, 'ssh'), `#!/bin/sh\nFAKE_SSH_PASSWORD='${password}' exec '${process.execPath}' '${fake}' "$@"\n`, { mode: 0o755 });
  return dir;
}

/** Options for the OpenSSH transport with the stand-in ssh of `fx` (fakeSshDir in its home). */
export async function opensshOptions(fx: ServerFixture): Promise<{ ssh: 'openssh'; sshCommand: string[]; knownHosts: string; agent: false }> {
  const dir = await fakeSshDir(dirname(fx.knownHosts), PASSWORD);
  return { ssh: 'openssh', sshCommand: [join(dir, 'ssh')], knownHosts: fx.knownHosts, agent: false };
}

/**
 * The most channels of `dest`'s pool carrying writes at once until `work` (a flush, a close) is
 * done, however slow a loaded machine makes that: counted at every turn of the event loop.
 */
export async function mostBusy(dest: { pool: { lanes: Array<{ bytes: number }> } }, work: Promise<unknown>): Promise<number> {
  let most = 0;
  let done = false;
  const finished = work.finally(() => { done = true; });
  while (!done) {
    most = Math.max(most, dest.pool.lanes.filter((l) => l.bytes > 0).length);
    await new Promise((r) => setImmediate(r));
  }
  await finished;
  return most;
}

/** xorshift32: deterministic, so a failing case reproduces. */
export function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x % n;
  };
}

/** Deterministic pseudo-random bytes. */
export function pattern(length: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = next(256);
  return out;
}

/**
 * Cut `data` into pieces of random sizes (1 byte to `maxPiece`) and return them shuffled, so
 * writes arrive out of order and at unaligned offsets.
 */
export function shuffledPieces(data: Buffer, maxPiece: number, seed: number): Array<{ offset: number; bytes: Buffer }> {
  const next = rng(seed);
  const pieces: Array<{ offset: number; bytes: Buffer }> = [];
  for (let off = 0; off < data.length;) {
    const len = Math.min(data.length - off, 1 + next(maxPiece));
    pieces.push({ offset: off, bytes: data.subarray(off, off + len) });
    off += len;
  }
  for (let i = pieces.length - 1; i > 0; i--) {
    const j = next(i + 1);
    [pieces[i], pieces[j]] = [pieces[j], pieces[i]];
  }
  return pieces;
}

/** Await a promise expected to fail with a FurError of `tag`, and return that error. */
export async function rejectsWith<T extends FurErrorTag>(p: Promise<unknown>, tag: T): Promise<FurError<T>> {
  try {
    await p;
  } catch (e) {
    if (isFurError(e, tag)) return e;
    throw new Error(`expected FurError(${tag}), got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
  }
  throw new Error(`expected FurError(${tag}), but it resolved`);
}

export type { Destination };

/**
 * A long link in the process: a TCP relay to 127.0.0.1:`port` that hands each direction's bytes
 * on `oneWayMs` after they arrive, in order (no rate limit). Its own TCP connect is answered at
 * once, as the bench's link emulator's is.
 */
export async function delayedLink(port: number, oneWayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (d: Buffer) => { setTimeout(() => { if (!to.destroyed) to.write(d); }, oneWayMs); });
    from.on('end', () => { setTimeout(() => to.end(), oneWayMs); });
    from.on('error', () => to.destroy());
    from.on('close', () => setTimeout(() => to.destroy(), oneWayMs));
  };
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) { sockets.add(s); s.once('close', () => sockets.delete(s)); }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
