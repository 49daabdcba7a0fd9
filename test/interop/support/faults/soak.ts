/**
 * The soak: many randomized fault runs over a few lanes side by side, counts summed. Shared by the
 * CI test (test/interop/faults-soak.test.ts, a few minutes) and test/interop/soak.ts (as long as asked).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lane } from './lane.js';
import { describePlan, FAULT_KINDS, planRun, type PlanOptions, type RunPlan } from './plan.js';
import { addCounts, emptyCounts, faultRun, type Counts, type RunOutcome } from './scenario.js';

export interface SoakOptions extends PlanOptions {
  runs: number;
  /** runs side by side, each lane with its own sshd, proxy and tmpfs */
  lanes: number;
  seed: number;
  /** only these run numbers (replaying a failure) */
  only?: number[];
  /** run these plans instead of drawing them from the seed */
  plans?: RunPlan[];
  furBin: string;
  /** per-run bound (default 90 s) */
  deadlineMs?: number;
  /** run the `fur verify` binary on every n-th run (default 10; 1 = all) */
  cliVerifyEvery?: number;
  /** h5dump the final files of every n-th run (default 5) */
  h5dumpEvery?: number;
  /** size of each lane's remote tmpfs (default 24 MiB) */
  tmpfsBytes?: number;
  /** stop starting new runs after this many failed (default 5) */
  maxFailures?: number;
  /** one line per finished run */
  onRun?: (o: RunOutcome, line: string) => void;
}

export interface SoakReport {
  seed: number;
  counts: Counts;
  failures: RunOutcome[];
  seconds: number;
  /** run time of each run, seconds */
  runSeconds: number[];
}

export async function soak(o: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'fur-faults-'));
  const counts = emptyCounts();
  const failures: RunOutcome[] = [];
  const runSeconds: number[] = [];
  const queue: RunPlan[] = o.plans ?? (o.only ?? Array.from({ length: o.runs }, (_, i) => i + 1)).map((run) => planRun(o.seed, run, o));
  const lanes: Lane[] = [];
  try {
    const n = Math.max(1, Math.min(o.lanes, queue.length));
    lanes.push(...(await Promise.all(Array.from({ length: n }, (_, i) => Lane.start(i, join(work, `lane${i}`), o.tmpfsBytes ?? 24 << 20)))));
    let next = 0;
    await Promise.all(lanes.map(async (lane) => {
      while (next < queue.length && failures.length < (o.maxFailures ?? 5)) {
        const plan = queue[next++]!;
        const run = plan.run;
        const outcome = await faultRun(lane, plan, {
          furBin: o.furBin,
          deadlineMs: o.deadlineMs ?? 90_000,
          cliVerify: run % (o.cliVerifyEvery ?? 10) === 1 % (o.cliVerifyEvery ?? 10),
          h5dump: run % (o.h5dumpEvery ?? 5) === 0,
        });
        addCounts(counts, outcome.counts);
        runSeconds.push(outcome.seconds);
        if (!outcome.ok) failures.push(outcome);
        o.onRun?.(outcome, runLine(outcome, describePlan(plan)));
      }
    }));
  } finally {
    for (const lane of lanes) await lane.dispose().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
  return { seed: o.seed, counts, failures, seconds: (Date.now() - started) / 1000, runSeconds };
}

function runLine(o: RunOutcome, plan: string): string {
  return `run ${o.run} ${o.ok ? 'ok' : 'FAILED'} ${o.seconds.toFixed(1)}s  ${plan}` +
    (o.ok ? '' : `\n  replay: FUR_SOAK_SEED=${o.seed} FUR_SOAK_ONLY=${o.run}\n  ` + o.problems.slice(0, 8).join('\n  '));
}

/** The counts, as the report prints them. */
export function formatReport(r: SoakReport): string {
  const c = r.counts;
  const kinds = FAULT_KINDS.map((k) => `${k} ${c.faults[k]}`).join(', ');
  const total = FAULT_KINDS.reduce((a, k) => a + c.faults[k], 0);
  const sorted = [...r.runSeconds].sort((a, b) => a - b);
  const q = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1) : '-');
  const lines = [
    `fault soak, seed ${r.seed}: ${c.runs} runs (${c.failedRuns} failed) in ${r.seconds.toFixed(0)} s (per run: median ${q(0.5)} s, p95 ${q(0.95)} s, max ${q(1)} s)`,
    `  methods: append ${c.methods.append}, batches ${c.methods.batches}, files ${c.methods.files}; ssh: openssh ${c.ssh.openssh}, builtin ${c.ssh.builtin}`,
    `  faults: ${total} — ${kinds}`,
    `  fur started ${c.furStarts} times; ended by a fault it could not ride out ${c.furExitsOnFault} times`,
    `  checkpoints ${c.checkpoints}, files opened ${c.filesOpened} (open failures ${c.openFailures})`,
    `  frames checked ${c.framesChecked}: lost ${c.lost}, duplicated ${c.duplicated}, wrong ${c.wrong}; premature deletions ${c.prematureDeletions}; leftovers ${c.leftovers}`,
    `  verified by fur verify ${c.verified} runs (binary ${c.verifiedCli}), by h5dump ${c.h5dumped}`,
  ];
  for (const f of r.failures) {
    lines.push(`  FAILED run ${f.run} (replay: FUR_SOAK_SEED=${f.seed} FUR_SOAK_ONLY=${f.run}):`, ...f.problems.slice(0, 10).map((p) => `    ${p}`));
    lines.push('    fur stderr, last starts:', ...f.log.slice(-3).flatMap((l) => l.split("\n").slice(process.env.FUR_SOAK_VERBOSE ? 0 : -6).map((x) => `      ${x}`)));
  }
  return lines.join('\n');
}

/** FUR_SOAK_SEED or a fresh seed; FUR_SOAK_ONLY=3,17 replays runs */
export function seedFromEnv(): { seed: number; only?: number[] } {
  const env = process.env.FUR_SOAK_SEED;
  const seed = env ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  const only = process.env.FUR_SOAK_ONLY ? process.env.FUR_SOAK_ONLY.split(',').map(Number) : undefined;
  return { seed, only };
}
