/**
 * One fault run: a simulated camera writes frames into a local folder while the real `fur watch`
 * (a child process, `--delete-source`) uploads them over SFTP through the fault proxy to OpenSSH,
 * and the run's faults hit it — connection cuts, stalls, slow links, SIGKILL, server restarts,
 * a full remote disk, a remote folder that turns read-only. fur is restarted as often as it
 * takes; the capture ends (stop file) once the faults are over; fur must then finish.
 *
 * Checked after every fault (fur frozen with SIGSTOP, or down), and at the end:
 *  - every remote file opens with h5py (HDF5 1.10.8) and every frame in it equals the frame the
 *    camera wrote under that name (SHA-256 over the frame, and /frame_sha256 agrees);
 *  - no local source is missing unless its frame is committed remotely: the local folder is
 *    listed first, the destination read after — committed data only grows, so a file missing
 *    from the listing must already be in what is read;
 * and at the end: every frame exactly once (no loss, no duplicate, capture order), the local
 * folder emptied, no temporary files left, and `fur verify` (against regenerated sources and
 * against the recorded hashes) agreeing.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cameraFileName, encodeFile, expectedFrame, runCamera } from '../../../../src/source/camera.js';
import { sortSequence } from '../../../../src/source/sequence.js';
import { verify, verifySelf } from '../../../../src/pipeline/verify.js';
import { FileDestination } from '../../../../src/transport/file.js';
import { run as runProgram } from '../../../../harness/run.js';
import { h5dumpCheck } from '../h5py.js';
import { FurProcess, type FurExit } from './fur-process.js';
import type { H5FileReport } from './h5check.js';
import type { Lane } from './lane.js';
import { FAULT_KINDS, type FaultKind, type FaultStep, type Method, type RunPlan, type Ssh } from './plan.js';

export interface Counts {
  runs: number;
  failedRuns: number;
  /** runs by upload method */
  methods: Record<Method, number>;
  /** runs by fur's SSH transport */
  ssh: Record<Ssh, number>;
  /** faults that took effect, by kind (a cut counts when it fired; a kill when fur was running) */
  faults: Record<FaultKind, number>;
  furStarts: number;
  /** fur ended by a fault it could not ride out (gave up, permission denied), then restarted */
  furExitsOnFault: number;
  checkpoints: number;
  /** HDF5 files opened with h5py (and files of the `files` method compared byte for byte) */
  filesOpened: number;
  openFailures: number;
  framesChecked: number;
  lost: number;
  duplicated: number;
  /** frames whose bytes differ from the camera's, or whose recorded SHA-256 disagrees */
  wrong: number;
  prematureDeletions: number;
  /** local frame files left after the last run finished, temporaries left at the destination */
  leftovers: number;
  /** runs checked with fur's verify (in process) / with the `fur verify` binary / with h5dump */
  verified: number;
  verifiedCli: number;
  h5dumped: number;
}

export function emptyCounts(): Counts {
  return {
    runs: 0, failedRuns: 0, methods: { append: 0, batches: 0, files: 0 }, ssh: { openssh: 0, builtin: 0 }, faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    furStarts: 0, furExitsOnFault: 0, checkpoints: 0, filesOpened: 0, openFailures: 0, framesChecked: 0, lost: 0,
    duplicated: 0, wrong: 0, prematureDeletions: 0, leftovers: 0, verified: 0, verifiedCli: 0, h5dumped: 0,
  };
}

export function addCounts(into: Counts, from: Counts): void {
  for (const [k, v] of Object.entries(from) as [keyof Counts, Counts[keyof Counts]][]) {
    if (k === 'faults') for (const kind of FAULT_KINDS) into.faults[kind] += from.faults[kind];
    else if (k === 'methods') for (const m of Object.keys(from.methods) as Method[]) into.methods[m] += from.methods[m];
    else if (k === 'ssh') for (const t of Object.keys(from.ssh) as Ssh[]) into.ssh[t] += from.ssh[t];
    else (into[k] as number) += v as number;
  }
}

export interface RunOptions {
  furBin: string;
  /** whole-run bound; past it the run fails (and fur is killed) */
  deadlineMs: number;
  /** also run the `fur verify` binary (both forms) at the end */
  cliVerify: boolean;
  /** also run h5dump over the final files */
  h5dump: boolean;
}

export interface RunOutcome {
  run: number;
  seed: number;
  ok: boolean;
  problems: string[];
  seconds: number;
  counts: Counts;
  /** fur's stderr of each start, for a failing run's report */
  log: string[];
}

const MAX_STARTS = 60;

interface Frame { name: string; hash: string; page: number }
interface RemoteView { frames: Frame[]; committed: Set<string>; temps: string[] }

class Deferred {
  promise: Promise<void>;
  resolve!: () => void;
  constructor() { this.promise = new Promise((r) => { this.resolve = r; }); }
}

export class FaultRun {
  readonly counts = emptyCounts();
  readonly problems: string[] = [];
  private readonly seen = new Set<string>();
  private readonly log: string[] = [];
  private readonly written: string[] = [];
  /** sources found deleted before their commit (each counted once) */
  private readonly premature = new Set<string>();
  private readonly hashes = new Map<string, string>();
  private readonly cam: string;
  private readonly orig: string;
  private readonly remoteDir: string;
  /** the append file, or the folder for batches and files */
  private readonly destPath: string;
  private fur?: FurProcess;
  private killedByUs = false;
  private stopWritten = false;
  private aborted = false;
  private finished = false;
  /** faults on now that can end a fur run (server down, disk full, permission) */
  private blocking = 0;
  private blockingEndedAt = 0;
  private permissionOn = 0;
  private permissionEndedAt = 0;
  private repaired = new Deferred();
  private sshdBusy: Promise<void> = Promise.resolve();
  private readonly cutsAtStart: number;

  constructor(private lane: Lane, readonly plan: RunPlan, private o: RunOptions) {
    this.cam = join(lane.dir, `cam-${plan.run}`);
    this.orig = join(lane.dir, `orig-${plan.run}`);
    this.remoteDir = join(lane.root, `run-${plan.run}`);
    this.destPath = plan.method === 'append' ? join(this.remoteDir, 'capture.h5') : this.remoteDir;
    for (let i = 0; i < plan.frames; i++) {
      this.hashes.set(this.name(i), createHash('sha256').update(expectedFrame(plan.seed, i, plan.dtype, plan.shape)).digest('hex'));
    }
    this.cutsAtStart = lane.proxy.stats.cuts;
    this.repaired.resolve();
  }

  private name(i: number): string {
    return cameraFileName(i + 1, this.plan.format);
  }

  private problem(text: string): void {
    if (this.seen.has(text)) return;
    this.seen.add(text);
    this.problems.push(text);
  }

  private args(): string[] {
    const p = this.plan;
    const read = p.format === 'raw' ? ['--dtype', p.dtype, '--shape', p.shape.join('x'), '--pattern', 'frame*.raw'] : ['--pattern', 'frame*.tif'];
    return [
      'watch', this.cam, this.lane.url(this.destPath), '--method', p.method, '--delete-source',
      '--completion', 'rename', '--stop-file', 'capture.done', '--batch', String(p.batch), '--batch-seconds', String(p.batchSeconds),
      '--give-up-after', String(p.giveUpAfter), '--json', ...(p.method === 'files' ? ['--parallel', String(p.parallel)] : []),
      ...read, ...this.lane.flags(), '--ssh', p.ssh,
    ];
  }

  async execute(): Promise<RunOutcome> {
    const started = Date.now();
    const p = this.plan;
    let timer: NodeJS.Timeout | undefined;
    try {
      await mkdir(this.cam, { recursive: true });
      await mkdir(this.remoteDir, { recursive: true });
      const deadline = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`run did not finish within ${this.o.deadlineMs / 1000} s`)), this.o.deadlineMs);
      });
      const keeper = this.keep();
      keeper.catch(() => undefined);
      const capture = runCamera({
        dir: this.cam, frames: p.frames, format: p.format, dtype: p.dtype, shape: p.shape, fps: p.fps, seed: p.seed, write: 'rename',
        onFile: (path) => this.written.push(basename(path)),
      });
      const faults = this.faults();
      faults.catch(() => undefined);
      const early = keeper.then(() => { throw new Error('fur ended before the capture did'); });
      await Promise.race([Promise.all([capture, faults]), early, deadline]);
      await this.repairAll();
      await this.checkpoint('faults over');
      await writeFile(join(this.cam, 'capture.done'), '');
      this.stopWritten = true;
      await Promise.race([keeper, deadline]);
      await this.finalCheck();
    } catch (e) {
      this.problem(`run failed: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
      this.aborted = true;
      this.fur?.kill();
      await this.fur?.exited;
      await this.repairAll().catch((e) => this.problem(`repair: ${(e as Error).message}`));
      this.counts.faults.cut += this.lane.proxy.stats.cuts - this.cutsAtStart;
      await rm(this.remoteDir, { recursive: true, force: true }).catch(() => undefined);
      await rm(this.cam, { recursive: true, force: true }).catch(() => undefined);
      await rm(this.orig, { recursive: true, force: true }).catch(() => undefined);
    }
    this.counts.runs = 1;
    this.counts.methods[p.method] = 1;
    this.counts.ssh[p.ssh] = 1;
    this.counts.failedRuns = this.problems.length ? 1 : 0;
    return {
      run: p.run, seed: p.seed, ok: this.problems.length === 0, problems: this.problems,
      seconds: (Date.now() - started) / 1000, counts: this.counts, log: this.log,
    };
  }

  // ---------------------------------------------------------------- fur, kept running

  private async keep(): Promise<void> {
    for (let starts = 0; ; starts++) {
      if (this.aborted) return;
      if (starts >= MAX_STARTS) throw new Error(`fur started ${MAX_STARTS} times without finishing`);
      this.killedByUs = false;
      const fur = new FurProcess(this.o.furBin, this.args());
      this.fur = fur;
      this.counts.furStarts++;
      const r = await fur.exited;
      this.log.push(`[start ${starts + 1}: exit ${r.code ?? r.signal}${this.killedByUs ? ' (killed by the harness)' : ''}]\n${r.stdout.trim()}\n${r.stderr.trim()}`);
      if (this.aborted) return;
      await this.checkpoint(`fur start ${starts + 1} ended (${r.code ?? r.signal})`, true);
      if (r.code === 0) {
        if (!this.stopWritten) throw new Error(`fur exited 0 before the stop file: ${lastLine(r)}`);
        this.finished = true;
        return;
      }
      if (r.signal === 'SIGKILL' && this.killedByUs) continue;
      if (r.code === 1 && this.explained(r)) {
        this.counts.furExitsOnFault++;
        if (!this.plan.restartIntoFault) await this.repaired.promise;
        continue;
      }
      throw new Error(`fur exited ${r.code ?? r.signal} with no fault to explain it: ${lastLine(r)}`);
    }
  }

  /** an exit a fault accounts for: giving up while the destination was unusable, or permission denied while it was so */
  private explained(r: FurExit): boolean {
    const last = lastLine(r);
    const now = Date.now();
    const window = this.plan.giveUpAfter * 1000 + 3000;
    if (/^fur: gave up after/.test(last)) return this.blocking > 0 || now - this.blockingEndedAt < window;
    if (/permission denied/.test(last)) return this.permissionOn > 0 || now - this.permissionEndedAt < 3000;
    return false;
  }

  /** the fur process once one runs (a kill needs a target); undefined when the run is over */
  private async runningFur(): Promise<FurProcess | undefined> {
    for (let i = 0; i < 1000; i++) {
      if (this.aborted || this.finished) return undefined;
      if (this.fur?.running) return this.fur;
      await sleep(10);
    }
    return undefined;
  }

  // ---------------------------------------------------------------- faults

  private async faults(): Promise<void> {
    const holding: Promise<void>[] = [];
    for (const step of this.plan.faults) {
      await sleep(step.afterMs);
      if (this.aborted) break;
      const applied = this.apply(step);
      if (step.overlap) holding.push(applied);
      else await applied;
    }
    await Promise.all(holding);
  }

  private beginBlocking(): void {
    this.blocking++;
    if (this.blocking === 1) this.repaired = new Deferred();
  }

  private endBlocking(): void {
    this.blocking--;
    this.blockingEndedAt = Date.now();
    if (this.blocking === 0) this.repaired.resolve();
  }

  private async apply(s: FaultStep): Promise<void> {
    const { proxy, sshd, fs } = this.lane;
    switch (s.kind) {
      case 'kill': {
        const fur = await this.runningFur();
        if (!fur) return;
        this.killedByUs = true;
        if (fur.kill()) this.counts.faults.kill++;
        await fur.exited; // the keeper checks the destination while fur is down, then restarts it
        return;
      }
      case 'cut': {
        const before = proxy.stats.cuts;
        proxy.cutAfter(s.bytes);
        // counted when it fires (at the end of the run); checked here if it fires soon
        for (let t = 0; t < s.holdMs && proxy.stats.cuts === before; t += 10) await sleep(10);
        if (proxy.stats.cuts > before) await this.checkpoint(`after a cut at ${s.bytes} bytes`);
        return;
      }
      case 'stall':
        proxy.stall(s.holdMs);
        this.counts.faults.stall++;
        await sleep(s.holdMs / 2);
        await this.checkpoint(`during a ${s.holdMs} ms stall`);
        await sleep(s.holdMs / 2);
        return;
      case 'slow':
        proxy.slow(s.rate, s.holdMs);
        this.counts.faults.slow++;
        await sleep(s.holdMs / 2);
        await this.checkpoint(`during a slow link (${s.rate} B/s)`);
        await sleep(s.holdMs / 2);
        return;
      case 'sshd-restart': {
        const turn = this.sshdBusy.then(async () => {
          if (this.aborted) return;
          this.beginBlocking();
          try {
            if (s.downMs === 0) await sshd.restart();
            else {
              await sshd.stop();
              await sleep(s.downMs / 2);
              await this.checkpoint(`sshd down`);
              await sleep(s.downMs / 2);
              await sshd.restart();
            }
            this.counts.faults['sshd-restart']++;
          } finally {
            this.endBlocking();
          }
        });
        this.sshdBusy = turn.catch(() => undefined);
        await turn;
        await this.checkpoint('after an sshd restart');
        return;
      }
      case 'disk-full': {
        if (fs.isFull) return;
        this.beginBlocking();
        try {
          await fs.fill(s.leave);
          this.counts.faults['disk-full']++;
          await sleep(s.holdMs / 2);
          await this.checkpoint(`remote disk full (${s.leave} bytes left)`);
          await sleep(s.holdMs / 2);
        } finally {
          await fs.free();
          this.endBlocking();
        }
        await this.checkpoint('after the remote disk got space again');
        return;
      }
      case 'permission': {
        if (this.permissionOn) return;
        this.permissionOn++;
        this.beginBlocking();
        const file = this.plan.method === 'append' && s.fileReadOnly && existsSync(this.destPath) ? this.destPath : undefined;
        try {
          if (file) await chmod(file, 0o444);
          await chmod(this.remoteDir, s.mode);
          this.counts.faults.permission++;
          await sleep(s.holdMs / 2);
          await this.checkpoint(`remote folder mode ${s.mode.toString(8).padStart(3, '0')}`);
          await sleep(s.holdMs / 2);
        } finally {
          await chmod(this.remoteDir, 0o755);
          if (file) await chmod(file, 0o644).catch(() => undefined);
          this.permissionOn--;
          this.permissionEndedAt = Date.now();
          this.endBlocking();
        }
        await this.checkpoint('after the permissions were restored');
        return;
      }
    }
  }

  /** Everything back to working order: no cut armed, space, permissions, the server up. */
  private async repairAll(): Promise<void> {
    const { proxy, sshd, fs } = this.lane;
    proxy.disarm();
    await this.sshdBusy;
    if (sshd.pid === undefined) await sshd.restart();
    if (fs.isFull) await fs.free();
    if (existsSync(this.remoteDir)) await chmod(this.remoteDir, 0o755);
    if (this.plan.method === 'append' && existsSync(this.destPath)) await chmod(this.destPath, 0o644);
  }

  // ---------------------------------------------------------------- checks

  /** frame files in the camera folder now */
  private async localFrames(): Promise<string[]> {
    const ext = this.plan.format === 'raw' ? '.raw' : '.tif';
    return (await readdir(this.cam)).filter((n) => n.startsWith('frame') && n.endsWith(ext));
  }

  /**
   * The destination as h5py sees it now (fur frozen when running), and the deletion rule: the
   * local listing comes first, the destination is read after, so a file missing locally must
   * show up as committed.
   */
  private async checkpoint(what: string, furDown = false): Promise<RemoteView | undefined> {
    this.counts.checkpoints++;
    const fur = this.fur;
    const frozen = !furDown && fur?.running ? fur.freeze() : false;
    try {
      const written = [...this.written];
      const local = new Set(await this.localFrames());
      const view = await this.readRemote(what);
      for (const n of written) {
        if (!local.has(n) && !view.committed.has(n) && !this.premature.has(n)) {
          this.premature.add(n);
          this.counts.prematureDeletions++;
          this.problem(`${what}: ${n} was deleted locally but is not committed at the destination`);
        }
      }
      return view;
    } finally {
      if (frozen) fur!.resume();
    }
  }

  private async readRemote(what: string): Promise<RemoteView> {
    const view: RemoteView = { frames: [], committed: new Set(), temps: [] };
    const fromH5 = (reports: H5FileReport[]) => {
      this.counts.filesOpened += reports.filter((r) => r.ok).length;
      for (const r of reports) {
        if (!r.ok) {
          this.counts.openFailures++;
          this.problem(`${what}: h5py cannot open ${r.path}: ${r.error}`);
          continue;
        }
        if (r.badSha.length) this.problem(`${what}: ${r.path}: /frame_sha256 disagrees with rows ${r.badSha.slice(0, 5).join(', ')}`);
        r.names.forEach((name, i) => view.frames.push({ name, hash: r.badSha.includes(i) ? 'bad-sha' : r.hashes[i]!, page: r.pages[i]! }));
      }
    };
    if (this.plan.method === 'append') {
      view.temps = (await readdir(this.remoteDir).catch(() => [] as string[])).filter((n) => n.endsWith('.fur-partial'));
      const st = await stat(this.destPath).catch(() => undefined);
      // a file fur has only just created (empty) holds nothing yet; anything longer must open
      if (st && st.size > 0) fromH5(await this.lane.h5.read([this.destPath]));
    } else {
      const names = sortSequence(await readdir(this.remoteDir).catch(() => [] as string[]));
      view.temps = names.filter((n) => n.endsWith('.fur-partial'));
      if (this.plan.method === 'batches') {
        fromH5(await this.lane.h5.read(names.filter((n) => n.endsWith('.h5')).map((n) => join(this.remoteDir, n))));
      } else {
        for (const n of names.filter((x) => !x.endsWith('.fur-partial') && !x.startsWith('.'))) {
          this.counts.filesOpened++;
          const bytes = await readFile(join(this.remoteDir, n));
          const i = this.indexOf(n);
          const want = i === undefined ? undefined : this.fileBytes(i);
          if (want && Buffer.compare(bytes, want) === 0) view.frames.push({ name: n, hash: this.hashes.get(n)!, page: 0 });
          else view.frames.push({ name: n, hash: `file of ${bytes.length} bytes that differs`, page: 0 });
        }
      }
    }
    for (const f of view.frames) {
      view.committed.add(f.name);
      const want = this.hashes.get(f.name);
      if (want === undefined) this.problem(`${what}: the destination holds a frame named ${f.name}, which the camera never wrote`);
      else if (want !== f.hash) this.problem(`${what}: frame ${f.name} differs from the camera's (${f.hash})`);
    }
    const dup = duplicates(view.frames.map((f) => f.name));
    if (dup.length) this.problem(`${what}: frames stored twice: ${dup.slice(0, 5).join(', ')}`);
    return view;
  }

  private indexOf(name: string): number | undefined {
    const m = /^frame(\d+)\./.exec(name);
    const i = m ? Number(m[1]) - 1 : -1;
    return i >= 0 && i < this.plan.frames && this.name(i) === name ? i : undefined;
  }

  private fileBytes(i: number): Buffer {
    const p = this.plan;
    return Buffer.from(encodeFile(p.format, p.dtype, p.shape, [expectedFrame(p.seed, i, p.dtype, p.shape)]));
  }

  private async finalCheck(): Promise<void> {
    const p = this.plan;
    const view = await this.checkpoint('final', true);
    if (!view) return;
    const names = view.frames.map((f) => f.name);
    const want = Array.from({ length: p.frames }, (_, i) => this.name(i));
    const have = new Set(names);
    const lost = want.filter((n) => !have.has(n));
    const dup = names.length - have.size;
    const wrong = view.frames.filter((f) => this.hashes.get(f.name) !== f.hash).length;
    this.counts.framesChecked += names.length;
    this.counts.lost += lost.length;
    this.counts.duplicated += dup;
    this.counts.wrong += wrong;
    if (lost.length) this.problem(`final: ${lost.length} frames lost: ${lost.slice(0, 5).join(', ')}`);
    if (names.length !== want.length || names.some((n, i) => n !== want[i])) {
      this.problem(`final: the destination holds ${names.length} frames, not the capture's ${want.length} in order (first: ${names.slice(0, 4).join(', ')})`);
    }
    if (view.frames.some((f) => f.page !== 0)) this.problem('final: /frame_page is not 0 for one-frame files');
    const left = await this.localFrames();
    if (left.length) {
      this.counts.leftovers += left.length;
      this.problem(`final: ${left.length} local files kept after a clean finish: ${left.slice(0, 5).join(', ')}`);
    }
    if (view.temps.length) {
      this.counts.leftovers += view.temps.length;
      this.problem(`final: temporaries left at the destination: ${view.temps.join(', ')}`);
    }
    await this.verifyWithFur();
    if (this.o.h5dump && p.method !== 'files') await this.h5dump();
  }

  /** fur's own verify, against sources regenerated from the seed (the originals were deleted) and against the recorded hashes */
  private async verifyWithFur(): Promise<void> {
    const p = this.plan;
    await mkdir(this.orig, { recursive: true });
    for (let i = 0; i < p.frames; i++) await writeFile(join(this.orig, this.name(i)), this.fileBytes(i));
    const read = p.format === 'raw' ? { dtype: p.dtype, shape: p.shape } : {};
    const pattern = p.format === 'raw' ? 'frame*.raw' : 'frame*.tif';
    const dest = await FileDestination.open(this.lane.root);
    const destPath = this.destPath.slice(this.lane.root.length + 1);
    try {
      const r = await verify({ sourceDir: this.orig, pattern, dest, destPath, method: p.method, dataset: '/data', read });
      if (r.equal !== p.frames || r.different.length || r.missing.length || r.remoteOnly) {
        this.problem(`fur verify: ${r.equal} equal, ${r.different.length} different, ${r.missing.length} missing, ${r.remoteOnly} remote-only (want ${p.frames} equal)`);
      }
      if (p.method !== 'files') {
        const s = await verifySelf({ dest, destPath, method: p.method, dataset: '/data' });
        if (s.equal !== p.frames || s.different.length) this.problem(`fur verify (hashes): ${s.equal} equal, ${s.different.length} different`);
      }
      this.counts.verified++;
    } finally {
      await dest.close();
    }
    if (!this.o.cliVerify) return;
    const flags = p.format === 'raw' ? ['--dtype', p.dtype, '--shape', p.shape.join('x'), '--pattern', pattern] : ['--pattern', pattern];
    const forms = [[this.orig, this.lane.url(this.destPath), ...flags], ...(p.method === 'files' ? [] : [[this.lane.url(this.destPath)]])];
    for (const form of forms) {
      const r = await runProgram(process.execPath, [this.o.furBin, 'verify', ...form, '--method', p.method, '--json', ...this.lane.flags(), '--ssh', p.ssh], { timeoutMs: 60_000 });
      const line = r.stdout.toString('utf8').trim().split('\n').pop() ?? '';
      let report: { ok?: boolean; equal?: number } = {};
      try { report = JSON.parse(line); } catch { /* reported below */ }
      if (r.code !== 0 || report.ok !== true || report.equal !== p.frames) {
        this.problem(`fur verify ${form.length === 1 ? 'DEST' : 'SRC DEST'} (binary) exit ${r.code}: ${line || r.stderr.trim()}`);
      }
    }
    this.counts.verifiedCli++;
  }

  private async h5dump(): Promise<void> {
    const files = this.plan.method === 'append'
      ? [this.destPath]
      : (await readdir(this.remoteDir)).filter((n) => n.endsWith('.h5')).map((n) => join(this.remoteDir, n));
    for (const f of files) {
      try {
        await h5dumpCheck(f);
      } catch (e) {
        this.problem(`h5dump: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
      }
    }
    this.counts.h5dumped++;
  }
}

function lastLine(r: FurExit): string {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  return lines[lines.length - 1] ?? '';
}

function duplicates(names: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) dup.add(n);
    seen.add(n);
  }
  return [...dup];
}

export async function faultRun(lane: Lane, plan: RunPlan, o: RunOptions): Promise<RunOutcome> {
  return new FaultRun(lane, plan, o).execute();
}
