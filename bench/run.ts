/**
 * Throughput of fur next to OpenSSH (sftp, scp) and rclone, over emulated long, fat links.
 *
 *   npm run bench [-- --rounds 5 --budget 20 --profiles none,1g-50ms --datasets thesis --tools fur,sftp --no-big]
 *
 * One run: a private Debian OpenSSH server on 127.0.0.1 (harness/sshd.ts), a link
 * emulator in front of it per profile (bench/link/relay.c: delay and rate per direction, bounded
 * queue), the datasets of bench/datasets.ts, and every uploader of bench/tools.ts, in rounds: in
 * each round every (profile, dataset) pair runs every uploader once, the order rotated from
 * round to round, so that noise from other work on the machine falls on all of them alike.
 * Reported: medians over the rounds of MB/s (bytes at the server / wall-clock seconds of the
 * process, start-up and connection included), the fraction of the link's rate, CPU seconds per GB
 * (user + system of the uploader and the children it waits for: ssh under sftp) and peak RSS.
 * Then one 10 GB upload with fur append on loopback (peak RSS), unless --no-big. The same 10 GB
 * can run through the rounds as dataset `big` (e.g. --datasets big --profiles 1g-50ms): a long
 * transfer, where connection, start-up and close weigh little next to the data.
 *
 * Results: bench/results/throughput.json, throughput.svg and README.md (the summary tables).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSshd } from '../harness/sshd.js';
import { chart } from './chart.js';
import { DATASET_NAMES, prepare, type Dataset } from './datasets.js';
import { linkMBps, PROFILES, queueBytes, relayBinary, relaySelfTest, startRelay, type LinkProfile, type Relay } from './link.js';
import { median } from './stats.js';
import { fur, opensshConfig, rclone, scp, sftpPut, type Measured, type Server, type Tool } from './tools.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DATA = join(REPO, 'bench', 'data', 'throughput');
const RESULTS = join(REPO, 'bench', 'results');

interface Args {
  rounds: number;
  budget: number;
  profiles: string[];
  datasets: string[];
  tools: string[];
  big: boolean;
  selfTest: boolean;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    rounds: 5, budget: 20, profiles: PROFILES.map((p) => p.name), datasets: DATASET_NAMES, tools: [],
    big: true, selfTest: true, out: 'throughput',
  };
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i] ?? '';
    switch (argv[i]) {
      case '--rounds': a.rounds = Number(v()); break;
      case '--budget': a.budget = Number(v()); break;
      case '--profiles': a.profiles = v().split(','); break;
      case '--datasets': a.datasets = v().split(','); break;
      case '--tools': a.tools = v().split(','); break;
      case '--no-big': a.big = false; break;
      case '--big-only': a.big = true; a.rounds = 0; break;
      case '--no-self-test': a.selfTest = false; break;
      case '--out': a.out = v(); break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return a;
}

interface Run {
  round: number;
  profile: string;
  dataset: string;
  tool: string;
  shape: string;
  complete: boolean;
  seconds: number;
  bytes: number;
  MBps: number;
  linkFraction?: number;
  cpuSeconds: number;
  cpuPerGB: number;
  maxRssMB: number;
  /** 1-minute load average when the run started (other work on the machine) */
  load: number;
  fur?: Measured['fur'];
}

const log = (m: string) => process.stderr.write(`${m}\n`);
/** other work on the (shared) machine when the bench began */
const LOAD_AT_START = readFileSync('/proc/loadavg', 'utf8').trim();

function ensureRclone(): void {
  if (existsSync('/usr/bin/rclone')) return;
  log('installing Debian\'s rclone …');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', 'rclone'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', 'rclone'], { stdio: 'inherit', env });
  }
  if (r.status !== 0) throw new Error('cannot install rclone (apt-get install rclone failed)');
}

const label = (t: Tool) => (t.name.startsWith('fur') ? t.name : `${t.name} (${t.shape})`);

/** Runs that go to the end whatever the budget: the ones the targets are judged on. */
function mustComplete(t: Tool, ds: Dataset, p: LinkProfile): boolean {
  if (t.name.startsWith('fur append') && (ds.name === 'thesis' || ds.name === 'big')) return true;
  if (t.name.startsWith('fur files') && ds.name === 'engas') return true;
  return p.direct === true && ds.name === 'thesis' && t.name === 'OpenSSH sftp put' && t.shape === 'one file';
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!args.tools.length || args.tools.some((t) => t.toLowerCase().includes('rclone'))) ensureRclone();
  const relayBin = relayBinary(join(REPO, 'bench', 'data', 'bin'), join(REPO, 'bench', 'link', 'relay.c'));
  const profiles = args.profiles.map((n) => {
    const p = PROFILES.find((x) => x.name === n);
    if (!p) throw new Error(`unknown profile ${n} (have ${PROFILES.map((x) => x.name).join(', ')})`);
    return p;
  });

  // the relay alone, before anything else runs: it must not be what limits a 1 Gbit/s link
  const selfTest = [];
  if (args.selfTest) {
    for (const p of [{ name: 'relay, no delay, no limit', rttMs: 0, rateMbit: 0 }, PROFILES.find((x) => x.name === '1g-50ms')!]) {
      const r = await relaySelfTest(relayBin, p, 2e9);
      log(`relay alone (${r.profile}): ${r.MBps.toFixed(0)} MB/s (${(r.MBps * 8).toFixed(0)} Mbit/s), relay CPU ${r.relayCpuSeconds.toFixed(2)} s for 2 GB`);
      selfTest.push(r);
    }
  }

  const datasets: Dataset[] = [];
  // 'big' (10 GB, the thesis frames ten times) is for long links: fixed costs amortized
  for (const n of args.datasets) datasets.push(n === 'big' ? await tenGigabyteSet(await prepare(DATA, 'thesis', log)) : await prepare(DATA, n, log));

  const sshd = await startSshd({ logLevel: 'ERROR' });
  const relays = new Map<string, Relay>();
  const runs: Run[] = [];
  const big: Array<Record<string, unknown>> = [];
  try {
    for (const p of profiles) if (!p.direct) relays.set(p.name, await startRelay(relayBin, sshd.port, p));
    const portOf = (p: LinkProfile) => (p.direct ? sshd.port : relays.get(p.name)!.port);
    // the relays' ports are other names for the same server: known_hosts lists them all
    const knownHosts = join(sshd.dir, 'known_hosts_bench');
    writeFileSync(knownHosts, [sshd.port, ...[...relays.values()].map((r) => r.port)].map((port) => `[${sshd.host}]:${port} ${sshd.hostKeyLine}\n`).join(''));
    const server: Server = { host: sshd.host, sshdPort: sshd.port, user: sshd.user, identityFile: sshd.identityFile, knownHostsFile: knownHosts, root: sshd.root };
    const furBin = join(REPO, 'bin', 'fur.js');
    const openssh = { opensshConfig: opensshConfig(server, join(sshd.dir, 'fur-openssh')) };
    const builtin = { builtin: true } as const;
    let tools: Tool[] = [
      ...sftpPut(server), ...scp(server), ...(existsSync('/usr/bin/rclone') ? rclone(server, join(sshd.dir, 'rclone'), [sshd.port, ...[...relays.values()].map((r) => r.port)]) : []),
      ...(['append', 'batches', 'files'] as const).flatMap((m) => [fur(server, furBin, m, builtin), fur(server, furBin, m, openssh)]),
    ];
    if (args.tools.length) tools = tools.filter((t) => args.tools.some((f) => label(t).toLowerCase().includes(f.toLowerCase())));

    for (let round = 0; round < args.rounds; round++) {
      for (const p of profiles) {
        for (const ds of datasets) {
          const order = tools.map((_, i) => tools[(i + round) % tools.length]!);
          for (const t of order) {
            // the 10 GB set exists only as frames (hard links), not as one file
            if (t.shape === 'one file' && !ds.oneFile) continue;
            const remote = join(sshd.root, `r-${round}-${p.name}-${ds.name}-${label(t).replace(/[^a-z0-9]+/gi, '-')}`);
            await removeTree(remote);
            execFileSync('sync');
            const budget = mustComplete(t, ds, p) ? undefined : args.budget;
            const load = loadAverage();
            let m: Measured;
            try {
              m = await t.run(ds, portOf(p), remote, budget);
            } catch (e) {
              log(`round ${round + 1} ${p.name} ${ds.name} ${label(t)}: FAILED ${(e as Error).message.split('\n')[0]}`);
              await removeTree(remote);
              continue;
            }
            // a stopped uploader's server side finishes what it had received: let it, before the next run
            if (!m.complete) await new Promise((r) => setTimeout(r, 1000));
            await removeTree(remote);
            if (m.bytes === 0) log(`${label(t)} moved nothing in ${m.seconds.toFixed(1)} s: ${m.stderr ?? ''}`);
            const link = linkMBps(p);
            const MBps = m.bytes / 1e6 / m.seconds;
            const r: Run = {
              round, profile: p.name, dataset: ds.name, tool: label(t), shape: t.shape, complete: m.complete,
              seconds: round3(m.seconds), bytes: m.bytes, MBps: round1(MBps),
              ...(link ? { linkFraction: round3(MBps / link) } : {}),
              cpuSeconds: round3(m.cpuSeconds), cpuPerGB: round3(m.cpuSeconds / Math.max(m.bytes / 1e9, 1e-9)),
              maxRssMB: round1(m.maxRssKB / 1024), load, ...(m.fur ? { fur: m.fur } : {}),
            };
            runs.push(r);
            log(`round ${round + 1}/${args.rounds} ${p.name.padEnd(10)} ${ds.name.padEnd(6)} ${r.tool.padEnd(36)} ${r.MBps.toFixed(1).padStart(7)} MB/s${link ? ` ${(100 * r.linkFraction!).toFixed(0).padStart(3)}%` : '     '}  ${r.cpuPerGB.toFixed(2).padStart(6)} CPU s/GB ${r.maxRssMB.toFixed(0).padStart(5)} MB${m.complete ? '' : `  (time-boxed: ${(m.bytes / 1e6).toFixed(0)} MB in ${m.seconds.toFixed(1)} s)`}`);
          }
        }
      }
    }
    if (args.big) {
      const thesis = datasets.find((d) => d.name === 'thesis') ?? await prepare(DATA, 'thesis', log);
      for (const t of tools.filter((x) => x.name.startsWith('fur append'))) big.push(await tenGigabytes(server, t, thesis));
    }
  } finally {
    for (const r of relays.values()) await r.stop();
    await sshd.dispose();
  }
  report(args, profiles, datasets, runs, selfTest, big);
}

/** 18,000 frames: the thesis frames, each used ten times, as hard links (10 GB; no one-file form). */
async function tenGigabyteSet(thesis: Dataset): Promise<Dataset> {
  const dir = join(DATA, 'big', 'files');
  if (!existsSync(join(DATA, 'big', '.complete'))) {
    rmSync(join(DATA, 'big'), { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 18000; i++) linkSync(thesis.files[i % thesis.files.length]!, join(dir, `frame${String(i + 1).padStart(6, '0')}.tif`));
    writeFileSync(join(DATA, 'big', '.complete'), '');
  }
  const files = readdirSync(dir).map((n) => join(dir, n));
  return { ...thesis, name: 'big', label: '18,000 frames 434×434×3 uint8 (10 GB)', dir, files, bytes: thesis.bytes * 10, oneFile: '' };
}

/** fur append (`tool`) of 10 GB on loopback (peak RSS: memory must not grow with the data). */
async function tenGigabytes(server: Server, tool: Tool, thesis: Dataset): Promise<Record<string, unknown>> {
  const ds = await tenGigabyteSet(thesis);
  const remote = join(server.root, 'big');
  await removeTree(remote);
  execFileSync('sync');
  log(`10 GB: ${tool.name} on loopback …`);
  const m = await tool.run(ds, server.sshdPort, remote, undefined);
  await removeTree(remote);
  const r = {
    dataset: ds.label, tool: tool.name, profile: 'none', seconds: round3(m.seconds), bytes: m.bytes,
    MBps: round1(m.bytes / 1e6 / m.seconds), cpuPerGB: round3(m.cpuSeconds / (m.bytes / 1e9)), maxRssMB: round1(m.maxRssKB / 1024), fur: m.fur,
  };
  log(`10 GB, ${tool.name}: ${r.MBps} MB/s, ${r.cpuPerGB} CPU s/GB, peak RSS ${r.maxRssMB} MB`);
  return r;
}

/**
 * Remove what a run left at the server. A stopped uploader's server side may still be writing
 * for a moment (its requests were in flight), so removing is retried until the tree stays gone.
 */
async function removeTree(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch (e) {
      if (attempt >= 50) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function loadAverage(): number {
  try { return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]); } catch { return NaN; }
}

function round1(x: number): number { return Math.round(x * 10) / 10; }
function round3(x: number): number { return Math.round(x * 1000) / 1000; }

interface Summary {
  profile: string;
  dataset: string;
  tool: string;
  runs: number;
  completeRuns: number;
  MBps: number;
  linkFraction?: number;
  cpuPerGB: number;
  maxRssMB: number;
  /** spread of the runs: (max - min) / median of MB/s */
  spread: number;
  /** fur's own timer (from its run start to done), median of complete runs */
  furMBps?: number;
  /** fur between its first and last commit, median of complete runs */
  steadyMBps?: number;
  steadyLinkFraction?: number;
  /** median 1-minute load average at the start of the runs */
  load: number;
}

function summarize(runs: Run[]): Summary[] {
  const keys = [...new Set(runs.map((r) => `${r.profile}\u0000${r.dataset}\u0000${r.tool}`))];
  return keys.map((k) => {
    const [profile, dataset, tool] = k.split('\u0000') as [string, string, string];
    const rs = runs.filter((r) => r.profile === profile && r.dataset === dataset && r.tool === tool);
    const rates = rs.map((r) => r.MBps);
    const m = median(rates);
    const fr = rs.filter((r) => r.fur?.mbPerSec !== undefined && r.complete).map((r) => r.fur!.mbPerSec);
    const st = rs.filter((r) => r.fur?.steadyMBps !== undefined && r.complete).map((r) => r.fur!.steadyMBps!);
    const link = linkMBps(PROFILES.find((p) => p.name === profile)!);
    return {
      profile, dataset, tool, runs: rs.length, completeRuns: rs.filter((r) => r.complete).length,
      MBps: round1(m),
      ...(rs[0]!.linkFraction !== undefined ? { linkFraction: round3(median(rs.map((r) => r.linkFraction!))) } : {}),
      cpuPerGB: round3(median(rs.map((r) => r.cpuPerGB))),
      maxRssMB: round1(Math.max(...rs.map((r) => r.maxRssMB))),
      spread: round3((Math.max(...rates) - Math.min(...rates)) / m),
      ...(fr.length ? { furMBps: round1(median(fr)) } : {}),
      ...(st.length ? { steadyMBps: round1(median(st)), ...(link ? { steadyLinkFraction: round3(median(st) / link) } : {}) } : {}),
      load: round1(median(rs.map((r) => r.load))),
    };
  });
}

interface Check { target: string; measured: string; met: boolean | null }

/**
 * The targets: issue 5's for fur append over the builtin SSH (rate ≥ 1.0× sftp put, CPU ≤ 1.5×),
 * issue 18's for fur append over OpenSSH (CPU ≤ 1.5× of sftp put counting fur's ssh children,
 * rate ≥ 0.8×); for both, the long links and peak RSS.
 */
function checks(s: Summary[], runs: Run[], big: Array<Record<string, unknown>>): Check[] {
  const get = (p: string, d: string, t: string) => s.find((x) => x.profile === p && x.dataset === d && x.tool === t);
  const out: Check[] = [];
  const put = 'OpenSSH sftp put (one file)';
  const sp = get('none', 'thesis', put);
  for (const [tool, minRate] of [['fur append', 1.0], ['fur append (openssh)', 0.8]] as const) {
    const fa = get('none', 'thesis', tool);
    if (fa && sp) {
      // side by side: the ratio within each round, then the median of the ratios
      const ratios = [...new Set(runs.map((r) => r.round))].map((round) => {
        const at = (t: string) => runs.find((r) => r.round === round && r.profile === 'none' && r.dataset === 'thesis' && r.tool === t);
        const a = at(tool), b = at(put);
        return a && b ? a.MBps / b.MBps : NaN;
      }).filter(Number.isFinite);
      const ratio = median(ratios);
      out.push({ target: `loopback, 1 GB: ${tool} ≥ ${minRate.toFixed(1)}× OpenSSH sftp put (one file, same cipher)`, measured: `${ratio.toFixed(2)}× (median of per-round ratios; ${fa.MBps} vs ${sp.MBps} MB/s)`, met: ratio >= minRate });
      const cpu = fa.cpuPerGB / sp.cpuPerGB;
      out.push({ target: `loopback: ${tool} CPU s/GB ≤ 1.5× the OpenSSH client's${tool.includes('openssh') ? ' (fur\'s ssh children counted)' : ''}`, measured: `${cpu.toFixed(2)}× (${fa.cpuPerGB} vs ${sp.cpuPerGB} s/GB)`, met: cpu <= 1.5 });
    }
    if (fa) out.push({ target: `peak RSS ≤ 200 MB, 1 GB case (${tool}, loopback)`, measured: `${fa.maxRssMB} MB`, met: fa.maxRssMB <= 200 });
    for (const [p, d] of [['1g-50ms', 'thesis'], ['200m-100ms', 'thesis'], ['1g-50ms', 'big'], ['200m-100ms', 'big']] as const) {
      const x = get(p, d, tool);
      if (x) {
        out.push({
          target: `${p}: ${tool} ≥ 90% of link rate${d === 'big' ? ' (10 GB)' : ''}`,
          measured: `${(100 * x.linkFraction!).toFixed(1)}% by the process's wall clock (${x.MBps} MB/s: connection, start-up and close included); ${x.furMBps ?? '?'} MB/s by fur's own timer${x.steadyLinkFraction !== undefined ? `; ${(100 * x.steadyLinkFraction).toFixed(1)}% (${x.steadyMBps} MB/s) between its first and last commit` : ''}`,
          met: x.linkFraction! >= 0.9,
        });
      }
    }
  }
  const ff = get('1g-50ms', 'engas', 'fur files');
  const sf = get('1g-50ms', 'engas', 'OpenSSH sftp put (files)');
  if (ff && sf) out.push({ target: '1g-50ms, 20,000 × 66 KB: fur files ≥ 5× OpenSSH sftp put of the files', measured: `${(ff.MBps / sf.MBps).toFixed(1)}× (${ff.MBps} vs ${sf.MBps} MB/s)`, met: ff.MBps / sf.MBps >= 5 });
  for (const b of big) out.push({ target: `peak RSS ≤ 200 MB, 10 GB run (${b.tool}, loopback)`, measured: `${b.maxRssMB} MB (${b.MBps} MB/s)`, met: (b.maxRssMB as number) <= 200 });
  return out;
}

/** Listed under the throughput tables of README.md: each runs on its own (`node dist/bench/NAME.js`). */
const OTHER_BENCHMARKS = [
  '[stream-drain.md](stream-drain.md): `fur stream` draining a python3-zmq sender (EIGER v1 raw, plain) into a local file next to an h5py filewriter receiving the same stream at once — MB/s, frames/s, CPU, peak RSS, fur/h5py (bench/stream-drain.ts)',
];

const PROFILE_TITLE: Record<string, string> = {
  none: 'loopback, no emulated link',
  '1g-10ms': '1 Gbit/s × 10 ms round trip',
  '1g-50ms': '1 Gbit/s × 50 ms round trip',
  '200m-100ms': '200 Mbit/s × 100 ms round trip',
};

function report(args: Args, profiles: LinkProfile[], datasets: Dataset[], runs: Run[], selfTest: unknown[], big: Array<Record<string, unknown>>): void {
  const summary = summarize(runs);
  const checkList = checks(summary, runs, big);
  const git = (a: string[]) => { try { return execFileSync('git', ['-C', REPO, ...a], { encoding: 'utf8' }).trim(); } catch { return '?'; } };
  const version = (cmd: string, a: string[]) => { const r = spawnSync(cmd, a, { encoding: 'utf8' }); return r.error ? `${cmd} not installed` : `${r.stdout}${r.stderr}`.trim().split('\n')[0]; };
  const result = {
    bench: 'throughput',
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']) + (git(['status', '--porcelain', '--untracked-files=no']) ? ' (with uncommitted changes)' : ''),
    machine: {
      cpus: cpus().length, cpuModel: cpus()[0]?.model, memGB: Math.round(totalmem() / 2 ** 30), node: process.version,
      openssh: version('/usr/bin/ssh', ['-V']), rclone: version('/usr/bin/rclone', ['version']),
      loadAverageAtStart: LOAD_AT_START,
      loadAverageAtEnd: execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim(),
    },
    method: [
      'a private OpenSSH sshd on 127.0.0.1; per profile a userspace relay (bench/link/relay.c) in front of it: each direction delayed by half the round trip and limited to the rate, holding at most rate × one-way delay + queue bytes (queue: 5 ms at the rate, ≥ 256 KiB), then pushing back through TCP flow control',
      'every run a fresh process under /usr/bin/time; MB/s = bytes at the server / 1e6 / wall-clock seconds (start-up and connection included); CPU = user + system of the uploader and the children it waits for (ssh under sftp/scp); RSS = peak resident set (GNU time %M)',
      `rounds: each round runs every uploader once per (profile, dataset), order rotated per round; figures are medians over rounds; a run is time-boxed at ${args.budget} s (then the bytes at the server count) except fur append on the 1 GB and 10 GB cases, fur files on the 20,000 files, and sftp put of the 1 GB file on loopback, which always complete`,
      'OpenSSH sftp/scp with -c aes128-gcm@openssh.com (the cipher ssh2, and so fur, negotiates first); scp uses the SFTP protocol (OpenSSH 9.2 default); rclone with defaults (4 transfers, 64 × 32 KiB requests per file) but no remote shell commands (shell_type = none, --sftp-disable-hashcheck: no md5sum after each file)',
      'fur: `fur upload SRC sftp://… --method M --json` with defaults (batches of 100 frames, fsync at every commit and every file); the remote target is removed and `sync` run before each run',
      'fur M: the builtin SSH (`--ssh builtin`: ssh2 in fur\'s thread, --identity/--known-hosts); fur M (openssh): `--ssh openssh --ssh-config FILE`, FILE holding the settings sftp/scp get on their command line (same key, known_hosts, strict checking, cipher aes128-gcm@openssh.com); fur waits for its ssh processes to exit, so their CPU is counted with fur\'s, as sftp\'s ssh is with sftp\'s',
      'fur\'s "steady" rate: bytes of its commits after the first, over the time from its first to its last commit event (connection, start-up, first batch and closing left out); "load": the 1-minute load average when each run started (the 2 cores are shared with other work)',
    ],
    profiles: profiles.map((p) => ({ ...p, queueBytes: p.direct ? undefined : queueBytes(p) })),
    datasets: datasets.map((d) => ({ name: d.name, label: d.label, files: d.files.length, bytes: d.bytes })),
    relaySelfTest: selfTest,
    rounds: args.rounds,
    budgetSeconds: args.budget,
    checks: checkList,
    summary,
    bigRuns: big,
    runs,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${args.out}.json`), JSON.stringify(result, null, 2) + '\n');

  const tools = [...new Set(summary.map((s) => s.tool))];
  const points = summary.map((s) => ({ tool: s.tool, dataset: s.dataset, rttMs: profiles.find((p) => p.name === s.profile)!.rttMs, MBps: s.MBps }));
  const links = new Map(profiles.map((p) => [p.rttMs, linkMBps(p)]));
  if (points.length) {
    writeFileSync(join(RESULTS, `${args.out}.svg`), chart(points, datasets.map((d) => ({ dataset: d.name, title: d.label })), tools, profiles.map((p) => p.rttMs), links,
      `medians of ${args.rounds} rounds; MB/s = bytes at the server / wall-clock s; ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores`));
  }

  const md: string[] = [];
  md.push('# Throughput: fur next to OpenSSH and rclone', '');
  md.push(`Generated by \`npm run bench\` (bench/run.ts) on ${result.date.slice(0, 10)}, commit ${result.commit}; ${result.machine.cpus} cores (${result.machine.cpuModel}), ${result.machine.openssh}, ${result.machine.rclone}, Node ${process.version}.`);
  md.push(`Medians of ${args.rounds} rounds (alternating order); runs time-boxed at ${args.budget} s unless marked complete. Raw runs: [${args.out}.json](${args.out}.json); chart: [${args.out}.svg](${args.out}.svg).`, '');
  if (checkList.length) {
    md.push('## Targets', '', '| target | measured | met |', '|---|---|---|');
    for (const c of checkList) md.push(`| ${c.target} | ${c.measured} | ${c.met === null ? '–' : c.met ? 'yes' : '**no**'} |`);
    md.push('');
  }
  for (const p of profiles) {
    for (const d of datasets) {
      const rows = summary.filter((s) => s.profile === p.name && s.dataset === d.name);
      if (!rows.length) continue;
      md.push(`## ${PROFILE_TITLE[p.name] ?? p.name} — ${d.label}`, '');
      md.push('| uploader | MB/s | of link | steady MB/s (fur) | CPU s/GB | peak RSS MB | spread | complete runs | load |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const s of rows) {
        const steady = s.steadyMBps === undefined ? '–' : `${s.steadyMBps.toFixed(1)}${s.steadyLinkFraction === undefined ? '' : ` (${(100 * s.steadyLinkFraction).toFixed(0)}%)`}`;
        md.push(`| ${s.tool} | ${s.MBps.toFixed(1)} | ${s.linkFraction === undefined ? '–' : `${(100 * s.linkFraction).toFixed(0)}%`} | ${steady} | ${s.cpuPerGB.toFixed(2)} | ${s.maxRssMB.toFixed(0)} | ${(100 * s.spread).toFixed(0)}% | ${s.completeRuns}/${s.runs} | ${s.load.toFixed(1)} |`);
      }
      md.push('');
    }
  }
  if (big.length) md.push('## 10 GB', '', ...big.map((b) => `- ${b.tool}, loopback, ${b.dataset}: ${b.MBps} MB/s, ${b.cpuPerGB} CPU s/GB, peak RSS ${b.maxRssMB} MB.`), '');
  if (selfTest.length) {
    md.push('## The link emulator alone', '', '| relay | MB/s | Mbit/s |', '|---|---:|---:|');
    for (const r of selfTest as { profile: string; MBps: number }[]) md.push(`| ${r.profile} | ${r.MBps.toFixed(0)} | ${(r.MBps * 8).toFixed(0)} |`);
    md.push('');
  }
  md.push('## How it was measured', '', ...result.method.map((m) => `- ${m}`), '');
  if (args.out === 'throughput') md.push('## The other benchmarks', '', ...OTHER_BENCHMARKS.map((b) => `- ${b}`), '');
  writeFileSync(join(RESULTS, args.out === 'throughput' ? 'README.md' : `${args.out}.md`), md.join('\n'));
  process.stdout.write(md.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
  process.exitCode = 1;
});
