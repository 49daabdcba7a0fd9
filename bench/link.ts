/**
 * The link emulator: bench/link/relay.c, a userspace TCP relay that delays each direction and
 * limits its rate with bounded buffering (kernel netem is not available here), compiled with the
 * system's gcc the first time it is needed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface LinkProfile {
  /** short name used in results: none, 1g-10ms, … */
  name: string;
  /** round trip added by the relay, ms (each direction gets half) */
  rttMs: number;
  /** rate of each direction, Mbit/s; 0 = not limited */
  rateMbit: number;
  /** true: no relay at all (straight to the server on loopback) */
  direct?: boolean;
}

export const PROFILES: readonly LinkProfile[] = [
  { name: 'none', rttMs: 0, rateMbit: 0, direct: true },
  { name: '1g-10ms', rttMs: 10, rateMbit: 1000 },
  { name: '1g-50ms', rttMs: 50, rateMbit: 1000 },
  { name: '200m-100ms', rttMs: 100, rateMbit: 200 },
];

/** Link rate in MB/s (1e6 bytes), or undefined when not limited. */
export function linkMBps(p: LinkProfile): number | undefined {
  return p.rateMbit > 0 ? p.rateMbit / 8 : undefined;
}

/**
 * The bottleneck queue: 5 ms at the link's rate, at least 256 KiB — a shallow router queue.
 * The relay also holds the bytes "on the wire" (rate × one-way delay) on top of it.
 */
export function queueBytes(p: LinkProfile): number {
  return Math.max(256 * 1024, Math.round((p.rateMbit * 1e6 / 8) * 0.005));
}

export function relayBinary(dir: string, source: string): string {
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, 'fur-relay');
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(source).mtimeMs) {
    execFileSync('gcc', ['-O2', '-Wall', '-o', bin, source], { stdio: 'inherit' });
  }
  return bin;
}

export interface Relay {
  port: number;
  stop(): Promise<void>;
  /** CPU seconds the relay used so far (user + system) */
  cpuSeconds(): number;
}

/** Start a relay on a free loopback port in front of `upstreamPort`. */
export async function startRelay(bin: string, upstreamPort: number, p: LinkProfile): Promise<Relay> {
  const oneWayUs = Math.round((p.rttMs * 1000) / 2);
  const child: ChildProcess = spawn(bin, ['relay', '0', String(upstreamPort), String(oneWayUs), String(p.rateMbit), String(queueBytes(p))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`relay exited (${code}) before listening`)));
    child.once('error', reject);
  });
  return {
    port,
    cpuSeconds: () => procCpuSeconds(child.pid!),
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/** user + system CPU seconds of a live process, from /proc/PID/stat */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * What the relay alone carries: a source writing as fast as it can through the relay into a sink
 * (both parts of the same C program), over `bytes`. Rate in MB/s.
 */
export async function relaySelfTest(bin: string, p: LinkProfile, bytes: number): Promise<{ profile: string; MBps: number; relayCpuSeconds: number }> {
  const sink = spawn(bin, ['sink', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  sink.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  const sinkPort = await new Promise<number>((resolve, reject) => {
    const tick = setInterval(() => {
      const m = /port (\d+)/.exec(out);
      if (m) { clearInterval(tick); resolve(Number(m[1])); }
    }, 10);
    sink.once('exit', (code) => { clearInterval(tick); reject(new Error(`sink exited ${code}`)); });
  });
  const relay = await startRelay(bin, sinkPort, p);
  const sinkDone = new Promise<void>((resolve) => sink.once('exit', () => resolve()));
  execFileSync(bin, ['source', String(relay.port), String(bytes)], { stdio: 'ignore' });
  await sinkDone;
  const cpu = relay.cpuSeconds();
  await relay.stop();
  const m = /MBps ([\d.]+)/.exec(out);
  return { profile: p.name, MBps: m ? Number(m[1]) : 0, relayCpuSeconds: cpu };
}
