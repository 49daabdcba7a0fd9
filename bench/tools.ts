/**
 * The uploaders put side by side, each run as a fresh process under GNU time (wall clock, CPU of
 * the process and the children it waits for, peak RSS): OpenSSH sftp and scp, rclone, and fur's
 * three methods.
 *
 * A run is either complete or time-boxed: slow peers on long links would take many minutes per
 * run (OpenSSH's sftp puts 20,000 files one after another, three round trips each), so after
 * `budget` seconds the uploader is stopped and the bytes that reached the server count. The
 * rate is bytes at the server / seconds since start, start-up included, as for complete runs.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from './datasets.js';

export interface Server {
  host: string;
  /** the sshd's own port (profile "none") */
  sshdPort: number;
  user: string;
  identityFile: string;
  /** lists the host key for the sshd port and every relay port */
  knownHostsFile: string;
  /** the directory SFTP sessions start in; uploads go below it */
  root: string;
}

export interface Measured {
  seconds: number;
  /** bytes that reached the server (all of them for a complete run) */
  bytes: number;
  complete: boolean;
  cpuSeconds: number;
  maxRssKB: number;
  /**
   * fur's own report ('done' event), when there is one; `steadyMBps`: the rate between its first
   * and last commit (start-up, the first batch and closing left out)
   */
  fur?: { seconds: number; mbPerSec: number; frames: number; steadyMBps?: number };
  /** the end of the uploader's error output (kept for runs that moved nothing) */
  stderr?: string;
}

export interface Tool {
  name: string;
  /** one file of all the bytes, or the individual files */
  shape: 'one file' | 'files';
  /** run once against `port` (sshd or relay); `remote` is a fresh directory at the server */
  run(ds: Dataset, port: number, remote: string, budget: number | undefined): Promise<Measured>;
}

const CIPHER = 'aes128-gcm@openssh.com';

function sshOptions(s: Server): string[] {
  return [
    '-F', '/dev/null', '-i', s.identityFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${s.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes', '-o', 'LogLevel=ERROR', '-c', CIPHER,
  ];
}

/** Bytes of regular files below `dir` (what reached the server so far). */
export function bytesBelow(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    try {
      if (e.isDirectory()) n += bytesBelow(p);
      else if (e.isFile()) n += statSync(p).size;
    } catch {
      // renamed or removed while we looked
    }
  }
  return n;
}

/**
 * Run `cmd args` under /usr/bin/time in its own process group. With a budget, the uploader (not
 * time) is stopped after `budget` seconds; `landed()` then says how many bytes arrived.
 */
export async function timed(cmd: string, args: string[], budget: number | undefined, landed: (stdout: string) => number, full: number): Promise<Measured & { stdout: string; stderr: string }> {
  const stats = join(process.env.TMPDIR ?? '/tmp', `fur-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', stats, cmd, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const t0 = performance.now();
  let stoppedAt: number | undefined;
  let landedAtStop = 0;
  let timer: NodeJS.Timeout | undefined;
  if (budget !== undefined) {
    timer = setTimeout(() => {
      stoppedAt = performance.now();
      landedAtStop = landed(stdout);
      // stop the uploader and its helpers (ssh under sftp), not time itself: it still reports
      for (const pid of groupMembers(child.pid!)) if (pid !== child.pid) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
    }, budget * 1000);
  }
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  if (timer) clearTimeout(timer);
  const wall = (performance.now() - t0) / 1000;
  const [e, u, s, m] = (existsSync(stats) ? readFileSync(stats, 'utf8') : '').trim().split('\n').pop()!.split(' ').map(Number);
  rmSync(stats, { force: true });
  if (stoppedAt === undefined && code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr.slice(-2000)}`);
  const complete = stoppedAt === undefined;
  return {
    seconds: complete ? (Number.isFinite(e) ? Math.max(e!, 0.01) : wall) : (stoppedAt! - t0) / 1000,
    bytes: complete ? full : landedAtStop,
    complete,
    cpuSeconds: (u ?? 0) + (s ?? 0),
    maxRssKB: m ?? 0,
    stdout,
    stderr: stderr.slice(-2000),
  };
}

/** Processes in the process group led by `leader`. */
function groupMembers(leader: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === leader) out.push(Number(name)); // field 5: pgrp
    } catch {
      // exited
    }
  }
  return out;
}

export function sftpPut(s: Server): Tool[] {
  const go = (shape: Tool['shape']) => async (ds: Dataset, port: number, remote: string, budget?: number) => {
    mkdirSync(remote, { recursive: true });
    const batch = join(remote, '..', `.batch-${Date.now()}`);
    writeFileSync(batch, shape === 'one file' ? `put ${ds.oneFile} ${remote}/all.bin\n` : `put ${ds.dir}/* ${remote}/\n`);
    try {
      return await timed('/usr/bin/sftp', [...sshOptions(s), '-P', String(port), '-b', batch, `${s.user}@${s.host}`], budget, () => bytesBelow(remote), ds.bytes);
    } finally {
      rmSync(batch, { force: true });
    }
  };
  return [
    { name: 'OpenSSH sftp put', shape: 'one file', run: go('one file') },
    { name: 'OpenSSH sftp put', shape: 'files', run: go('files') },
  ];
}

export function scp(s: Server): Tool[] {
  const go = (shape: Tool['shape']) => async (ds: Dataset, port: number, remote: string, budget?: number) => {
    mkdirSync(remote, { recursive: true });
    const args = shape === 'one file'
      ? [ds.oneFile, `${s.user}@${s.host}:${remote}/all.bin`]
      : ['-r', ds.dir, `${s.user}@${s.host}:${remote}/`];
    return timed('/usr/bin/scp', [...sshOptions(s), '-q', '-P', String(port), ...args], budget, () => bytesBelow(remote), ds.bytes);
  };
  return [
    { name: 'OpenSSH scp', shape: 'one file', run: go('one file') },
    { name: 'OpenSSH scp', shape: 'files', run: go('files') },
  ];
}

/**
 * rclone with an sftp remote per port, defaults otherwise (4 transfers, 64 requests of 32 KiB
 * per file) except that it runs no shell commands on the server: no md5sum/sha1sum after each
 * file (the others do not verify either), and no shell detection.
 */
export function rclone(s: Server, configDir: string, ports: number[]): Tool[] {
  mkdirSync(configDir, { recursive: true });
  const config = join(configDir, 'rclone.conf');
  writeFileSync(config, ports.map((p) => [
    `[bench${p}]`, 'type = sftp', `host = ${s.host}`, `port = ${p}`, `user = ${s.user}`,
    `key_file = ${s.identityFile}`, `known_hosts_file = ${s.knownHostsFile}`,
    // no remote shell commands (rclone otherwise runs one to detect the shell, and md5sum after uploads)
    'shell_type = none', '',
  ].join('\n')).join('\n'));
  const go = (shape: Tool['shape']) => async (ds: Dataset, port: number, remote: string, budget?: number) => {
    mkdirSync(remote, { recursive: true });
    const from = shape === 'one file' ? ds.oneFile : ds.dir;
    return timed('/usr/bin/rclone', ['--config', config, '--sftp-disable-hashcheck', 'copy', from, `bench${port}:${remote}`], budget, () => bytesBelow(remote), ds.bytes);
  };
  return [
    { name: 'rclone copy', shape: 'one file', run: go('one file') },
    { name: 'rclone copy', shape: 'files', run: go('files') },
  ];
}

/**
 * The ssh_config fur's OpenSSH transport gets in the bench: the settings sftp and scp get on their
 * command line (sshOptions), the same cipher included.
 */
export function opensshConfig(s: Server, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'ssh_config');
  writeFileSync(file, [
    'Host *', `  IdentityFile ${s.identityFile}`, '  IdentitiesOnly yes', `  UserKnownHostsFile ${s.knownHostsFile}`,
    '  GlobalKnownHostsFile /dev/null', '  StrictHostKeyChecking yes', '  LogLevel ERROR', `  Ciphers ${CIPHER}`, '',
  ].join('\n'));
  return file;
}

/**
 * fur upload with `method` over `ssh`: the builtin (ssh2, "fur append") or the system's OpenSSH
 * ("fur append (openssh)", its ssh configured by `opensshConfig`).
 */
export function fur(s: Server, bin: string, method: 'append' | 'batches' | 'files', ssh: { builtin: true } | { opensshConfig: string }, extra: string[] = []): Tool {
  const how = 'builtin' in ssh
    ? ['--ssh', 'builtin', '--identity', s.identityFile, '--known-hosts', s.knownHostsFile]
    : ['--ssh', 'openssh', '--ssh-config', ssh.opensshConfig];
  return {
    name: `fur ${method}${'builtin' in ssh ? '' : ' (openssh)'}`,
    shape: 'files',
    run: async (ds, port, remote, budget) => {
      mkdirSync(remote, { recursive: true });
      const url = `sftp://${s.user}@${s.host}:${port}${remote}${method === 'append' ? '/bench.h5' : ''}`;
      const args = [bin, 'upload', ds.dir, url, '--method', method, '--pattern', ds.pattern, ...how, '--json', ...extra,
        // FUR_BENCH_FUR_ARGS: extra fur options for trying settings (results record them)
        ...(process.env.FUR_BENCH_FUR_ARGS ?? '').split(' ').filter(Boolean)];
      // what fur committed (an HDF5 file's size includes room reserved ahead of the data)
      const committed = (out: string) => out.split('\n').filter((l) => l.startsWith('{"type":"commit"'))
        .reduce((n, l) => n + (JSON.parse(l) as { bytes: number }).bytes, 0);
      // FUR_BENCH_NODE_ARGS: node options for fur's process only (e.g. --cpu-prof to see where time goes)
      const nodeArgs = (process.env.FUR_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const m = await timed(process.execPath, [...nodeArgs, ...args], budget, committed, ds.bytes);
      const events = m.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; seconds: number; mbPerSec: number; frames: number; bytes: number; time: string });
      const done = events.find((e) => e.type === 'done');
      if (m.complete && done?.frames !== ds.files.length) throw new Error(`fur ${method} stored ${done?.frames} of ${ds.files.length} frames:\n${m.stderr.slice(-2000)}`);
      const commits = events.filter((e) => e.type === 'commit');
      const span = commits.length > 2 ? (Date.parse(commits.at(-1)!.time) - Date.parse(commits[0]!.time)) / 1000 : 0;
      const steady = span > 0 ? commits.slice(1).reduce((n, e) => n + e.bytes, 0) / 1e6 / span : undefined;
      return { ...m, fur: done && { seconds: done.seconds, mbPerSec: done.mbPerSec, frames: done.frames, ...(steady ? { steadyMBps: Math.round(steady * 10) / 10 } : {}) } };
    },
  };
}
