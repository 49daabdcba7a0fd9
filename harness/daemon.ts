/**
 * Starting and stopping the servers the interop tier runs (vsftpd, ProFTPD, pure-ftpd, pyftpdlib):
 * free ports on 127.0.0.1, waiting until a server accepts connections, and stopping it together
 * with the session processes it forked (which outlive the listener).
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

/** A base port with `n` free ports from it (a control port and a passive range), found by trying. */
export async function freePorts(n: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 30000 + Math.floor(Math.random() * 20000);
    const ok = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(base + i, '127.0.0.1', () => s.close(() => resolve(true)));
    })));
    if (ok.every(Boolean)) return base;
  }
  throw new Error(`no ${n} free ports in a row on 127.0.0.1`);
}

/** Resolves once `port` accepts a connection; throws with `why()` if `child` exits first or 15 s pass. */
export async function listening(port: number, child: ChildProcess, name: string, why: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start (exit ${child.exitCode ?? child.signalCode}): ${why()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stop `child` and every process it forked (sessions first: afterwards they belong to init). */
export async function stopAll(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  for (const pid of descendants(child.pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Every process below `root`, from /proc. */
export function descendants(root: number): number[] {
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
