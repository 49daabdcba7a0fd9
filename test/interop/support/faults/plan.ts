/**
 * What one fault run does, drawn from its seed: the capture (method, format, frames, rate), fur's
 * settings, and the faults with their timing and sizes.
 */
import { Rng } from './rng.js';

export type Method = 'append' | 'batches' | 'files';
/** fur's SSH: the system's OpenSSH client, or ssh2 inside fur */
export type Ssh = 'openssh' | 'builtin';
export const SSH_KINDS: readonly Ssh[] = ['openssh', 'builtin'];
export type FaultKind = 'cut' | 'stall' | 'slow' | 'kill' | 'sshd-restart' | 'disk-full' | 'permission';
export const FAULT_KINDS: readonly FaultKind[] = ['cut', 'stall', 'slow', 'kill', 'sshd-restart', 'disk-full', 'permission'];

export interface FaultStep {
  kind: FaultKind;
  /** wait this long after the previous step was applied */
  afterMs: number;
  /** how long the fault lasts (stall, slow, disk-full, permission, server down) */
  holdMs: number;
  /** cut: reset the connection after this many more bytes */
  bytes: number;
  /** slow: bytes per second */
  rate: number;
  /** permission: mode of the remote folder while the fault lasts */
  mode: number;
  /** permission (append): the HDF5 file read-only too */
  fileReadOnly: boolean;
  /** disk-full: bytes left free */
  leave: number;
  /** sshd-restart: 0 = restart at once, else stopped this long */
  downMs: number;
  /** the next step starts while this one still holds */
  overlap: boolean;
}

export interface RunPlan {
  run: number;
  seed: number;
  method: Method;
  format: 'raw' | 'tiff';
  dtype: 'uint16';
  shape: number[];
  frames: number;
  fps: number;
  batch: number;
  batchSeconds: number;
  giveUpAfter: number;
  parallel: number;
  faults: FaultStep[];
  /** when fur exits because of a fault still on: restart it at once rather than after the repair */
  restartIntoFault: boolean;
  /** fur's --ssh */
  ssh: Ssh;
}

export interface PlanOptions {
  /** longer captures and more faults per run (test/interop/soak.ts) */
  long?: boolean;
  /** only these fault kinds */
  kinds?: readonly FaultKind[];
  /** only these methods */
  methods?: readonly Method[];
}

const KIND_WEIGHTS: Record<FaultKind, number> = {
  kill: 26, cut: 22, 'sshd-restart': 12, stall: 9, slow: 9, 'disk-full': 11, permission: 11,
};

export function planRun(seed: number, run: number, o: PlanOptions = {}): RunPlan {
  const rng = Rng.forRun(seed, run);
  const methods = o.methods ?? ['append', 'batches', 'files'];
  const weights = { append: 6, batches: 2.5, files: 1.5 } as Record<Method, number>;
  const method = rng.weighted(Object.fromEntries(methods.map((m) => [m, weights[m]])) as Record<Method, number>);
  const frames = o.long ? rng.int(20, 120) : rng.int(20, 60);
  const captureSeconds = o.long ? 0.5 + rng.next() * 5 : 0.4 + rng.next() * 1.6;
  const kinds = o.kinds ?? FAULT_KINDS;
  const kindWeights = Object.fromEntries(kinds.map((k) => [k, KIND_WEIGHTS[k]])) as Record<FaultKind, number>;
  const nFaults = o.long ? rng.int(1, 6) : ({ one: 1, two: 2, three: 3 } as const)[rng.weighted({ one: 5, two: 4, three: 1 })];
  const faults: FaultStep[] = [];
  for (let i = 0; i < nFaults; i++) {
    const kind = rng.weighted(kindWeights);
    faults.push({
      kind,
      afterMs: i === 0 ? rng.logInt(1, 900) : rng.logInt(1, 1200),
      holdMs: rng.int(150, kind === 'disk-full' || kind === 'permission' ? 2500 : 1800),
      bytes: rng.logInt(1, 120_000),
      rate: rng.logInt(2_000, 100_000),
      mode: rng.pick([0o555, 0o000, 0o111, 0o500]),
      fileReadOnly: rng.chance(0.5),
      leave: rng.chance(0.3) ? 0 : rng.logInt(512, 96 << 10),
      downMs: rng.chance(0.4) ? 0 : rng.int(100, 2500),
      overlap: rng.chance(0.25),
    });
  }
  return {
    run,
    seed,
    method,
    format: rng.pick(['raw', 'tiff'] as const),
    dtype: 'uint16',
    shape: [16, 16],
    frames,
    fps: Math.max(5, Math.round(frames / captureSeconds)),
    batch: rng.int(1, 8),
    batchSeconds: rng.pick([0.3, 0.5, 1, 2]),
    // longer than a reconnection can take on a loaded 2-core machine (an ssh process and its
    // handshake, the lease taken back): a cut is over at once and must never end a run
    giveUpAfter: rng.pick([2, 3, 4, 5]),
    parallel: rng.int(1, 4),
    faults,
    restartIntoFault: rng.chance(0.4),
    // drawn last: the draws above stay those of earlier seeds
    ssh: rng.pick(SSH_KINDS),
  };
}

export function describePlan(p: RunPlan): string {
  const f = p.faults.map((s) => {
    const what = {
      cut: `cut@${s.bytes}B`, stall: `stall ${s.holdMs}ms`, slow: `slow ${s.rate}B/s ${s.holdMs}ms`, kill: 'kill',
      'sshd-restart': s.downMs ? `sshd down ${s.downMs}ms` : 'sshd restart', 'disk-full': `disk-full leave ${s.leave}B ${s.holdMs}ms`,
      permission: `chmod ${s.mode.toString(8).padStart(3, '0')}${s.fileReadOnly ? '+file 444' : ''} ${s.holdMs}ms`,
    }[s.kind];
    return `+${s.afterMs}ms ${what}${s.overlap ? ' (overlap)' : ''}`;
  });
  return `${p.ssh}: ${p.method} ${p.format} ${p.frames} frames @${p.fps}fps batch ${p.batch}/${p.batchSeconds}s give-up ${p.giveUpAfter}s` +
    `${p.method === 'files' ? ` parallel ${p.parallel}` : ''}: ${f.join(', ')}`;
}
