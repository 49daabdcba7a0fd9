/**
 * A one-node Ceph cluster with the RADOS Gateway in front — the S3 many facilities run — started
 * from Debian's ceph-mon, ceph-osd and radosgw for interop tests: everything in a temporary
 * directory on 127.0.0.1, a fresh fsid, no cephx (`auth_*_required = none`; the monitor's
 * clients speak msgr2 in crc mode), the OSD on memstore (data in memory: nothing to format,
 * nothing left on disk), one placement group per pool, and an S3 user made with radosgw-admin.
 *
 * Start-up is tuned because CI pays it: the monitor is made with its first osdmap (osdmaptool)
 * instead of registering the OSD through the `ceph` CLI; paxos proposes at once instead of once a
 * second (every pool radosgw creates is one osdmap epoch); radosgw starts only once the OSD is
 * active, because pools created before that wait for a monitor tick (~5 s) to peer. The steps'
 * times are kept in `steps`; `startupMs` is the whole.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from '../../../harness/run.js';
import { freePort } from '../../../harness/sshd.js';

const BIN = { mon: '/usr/bin/ceph-mon', osd: '/usr/bin/ceph-osd', rgw: '/usr/bin/radosgw', admin: '/usr/bin/radosgw-admin', monmaptool: '/usr/bin/monmaptool', osdmaptool: '/usr/bin/osdmaptool' };

export interface CephRgw {
  /** `http://127.0.0.1:port` of radosgw */
  readonly endpoint: string;
  /** the S3 keys of the user made for the tests */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** ceph.conf, daemon data, logs */
  readonly dir: string;
  /** from the first command to radosgw answering, with the user made */
  readonly startupMs: number;
  /** milliseconds each step took, in order */
  readonly steps: [string, number][];
  /** `radosgw-admin ARGS` against this cluster; stdout */
  admin(args: readonly string[]): Promise<string>;
  /** the last lines of every daemon's log (for a failure message) */
  logTail(lines?: number): string;
  /** stops the daemons and deletes the directory */
  stop(): Promise<void>;
}

export function cephInstalled(): boolean {
  return Object.values(BIN).every((b) => existsSync(b));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Daemons still running when the test process exits, or is told to, are killed with it. */
const running = new Set<ChildProcess>();
const dirs = new Set<string>();
const reap = () => {
  for (const p of running) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
};
process.once('exit', reap);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    reap();
    process.kill(process.pid, signal);
  });
}

export async function startCephRgw(opts: { startTimeoutMs?: number } = {}): Promise<CephRgw> {
  const missing = Object.values(BIN).filter((b) => !existsSync(b));
  if (missing.length) throw new Error(`${missing.join(', ')} not found: install Debian's ceph-mon, ceph-osd and radosgw`);
  const started = performance.now();
  const steps: [string, number][] = [];
  let last = started;
  const step = (name: string) => { const now = performance.now(); steps.push([name, Math.round(now - last)]); last = now; };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 120_000);

  const dir = mkdtempSync(join(tmpdir(), 'fur-ceph-'));
  dirs.add(dir);
  for (const d of ['mon', 'osd/ceph-0', 'run', 'log']) mkdirSync(join(dir, d), { recursive: true });
  const fsid = randomUUID();
  const [monPort, rgwPort] = await Promise.all([freePort(), freePort()]);
  const conf = join(dir, 'ceph.conf');
  writeFileSync(conf, [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = v2:127.0.0.1:${monPort}`,
    'public network = 127.0.0.1/32',
    'ms bind ipv6 = false',
    'auth cluster required = none',
    'auth service required = none',
    'auth client required = none',
    'ms mon client mode = crc',
    'osd objectstore = memstore',
    'memstore device bytes = 2147483648',
    'osd pool default size = 1',
    'osd pool default min size = 1',
    'osd pool default pg num = 1',
    'osd pool default pgp num = 1',
    'osd pool default pg autoscale mode = off',
    'mon allow pool size one = true',
    'mon warn on pool no redundancy = false',
    'osd crush chooseleaf type = 0',
    // a test machine's disk may be fuller than a monitor likes; the store is tiny
    'mon data avail warn = 1',
    'mon data avail crit = 0',
    'paxos propose interval = 0.01',
    'paxos min wait = 0.001',
    `run dir = ${dir}/run`,
    `admin socket = ${dir}/run/$name.asok`,
    `pid file = ${dir}/run/$name.pid`,
    `log file = ${dir}/log/$name.log`,
    `mon cluster log file = ${dir}/log/cluster.log`,
    `crash dir = ${dir}/crash`,
    `mon data = ${dir}/mon/$cluster-$id`,
    `osd data = ${dir}/osd/$cluster-$id`,
    '',
  ].join('\n'));
  const c = ['-c', conf];
  const daemons: ChildProcess[] = [];
  const spawnDaemon = (bin: string, args: string[], name: string): ChildProcess => {
    const fd = openSync(join(dir, 'log', `${name}.out`), 'a');
    try {
      const p = spawn(bin, args, { stdio: ['ignore', fd, fd] });
      p.once('error', () => {});
      daemons.push(p);
      running.add(p);
      p.once('exit', () => running.delete(p));
      return p;
    } finally {
      closeSync(fd);
    }
  };
  const logTail = (lines = 15): string => readdirSync(join(dir, 'log')).map((f) => {
    const text = readFileSync(join(dir, 'log', f), 'utf8').trimEnd().split('\n');
    return `--- ${f}\n${text.slice(-lines).join('\n')}`;
  }).join('\n');
  const stop = async (): Promise<void> => {
    await Promise.all(daemons.map((p) => new Promise<void>((res) => {
      if (p.exitCode !== null || p.signalCode !== null) return res();
      p.once('exit', () => res());
      // memstore keeps nothing worth a clean shutdown
      p.kill('SIGKILL');
    })));
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };
  const alive = (p: ChildProcess, what: string) => {
    if (p.exitCode !== null || p.signalCode !== null) throw new Error(`${what} exited during start (${p.exitCode ?? p.signalCode}):\n${logTail()}`);
    if (Date.now() > deadline) throw new Error(`the Ceph cluster did not start within ${opts.startTimeoutMs ?? 120_000} ms (${what}):\n${logTail()}`);
  };

  try {
    await Promise.all([
      runOk(BIN.monmaptool, ['--create', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, join(dir, 'monmap')]),
      // osd.0 exists from the first osdmap on: no `ceph osd new` round trip through the CLI
      runOk(BIN.osdmaptool, [...c, '--createsimple', '1', join(dir, 'osdmap')]),
    ]);
    await runOk(BIN.mon, [...c, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--osdmap', join(dir, 'osdmap')]);
    step('maps + monitor store');
    const mon = spawnDaemon(BIN.mon, [...c, '-f', '-i', 'a'], 'mon.a');
    // making the OSD's store asks the monitor for the cluster's maps
    await runOk(BIN.osd, [...c, '--mkfs', '-i', '0'], { timeoutMs: 60_000 });
    step('monitor started, OSD store made');
    const osd = spawnDaemon(BIN.osd, [...c, '-f', '-i', '0'], 'osd.0');
    const osdLog = join(dir, 'log', 'osd.0.log');
    while (!(existsSync(osdLog) && readFileSync(osdLog, 'utf8').includes('booting -> active'))) {
      alive(mon, 'ceph-mon');
      alive(osd, 'ceph-osd');
      await sleep(20);
    }
    step('OSD active');
    const rgw = spawnDaemon(BIN.rgw, [...c, '-f', '-n', 'client.rgw.a', '--rgw-frontends', `beast endpoint=127.0.0.1:${rgwPort}`], 'client.rgw.a');
    const credentials = { accessKeyId: `FURCEPH${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(24).toString('base64url') };
    const admin = async (args: readonly string[]): Promise<string> => (await runOk(BIN.admin, [...c, ...args], { timeoutMs: 60_000 })).stdout.toString('utf8');
    // made while radosgw creates its pools; both wait for the same ones
    await admin(['user', 'create', '--uid', 'fur', '--display-name', 'fur tests', '--access-key', credentials.accessKeyId, '--secret', credentials.secretAccessKey]);
    step('user made');
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    while (!(await answers(endpoint))) {
      alive(rgw, 'radosgw');
      await sleep(25);
    }
    step('radosgw answering');
    return { endpoint, credentials, dir, startupMs: Math.round(performance.now() - started), steps, admin, logTail, stop };
  } catch (e) {
    const tail = existsSync(dir) ? logTail() : '';
    await stop();
    if (e instanceof Error && !e.message.includes('--- ')) e.message += `\n${tail}`;
    throw e;
  }
}

/** radosgw answers an anonymous ListBuckets with 200 once its frontend is up. */
function answers(endpoint: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request(`${endpoint}/`, { timeout: 1000 }, (r) => { r.resume(); res(r.statusCode === 200); });
    req.on('error', () => res(false));
    req.on('timeout', () => { req.destroy(); res(false); });
    req.end();
  });
}
