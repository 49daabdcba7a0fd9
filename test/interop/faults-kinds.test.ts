/**
 * Every fault kind against every upload method over both SSH transports (OpenSSH's ssh, ssh2),
 * once each with fixed settings (the soak draws them at random; this makes sure each pairing is
 * met and says which one broke):
 *
 *   kill          SIGKILL of `fur watch` early (while it creates the file) and twice more later
 *   cut           the connection reset after 700 bytes (the SSH handshake), 9 KB and 40 KB
 *   stall         nothing moves for 0.4 s, then for 2.5 s (longer than --give-up-after)
 *   slow          3 KB/s for 1.5 s
 *   sshd-restart  OpenSSH restarted at once, then stopped for 2.5 s (fur gives up and is restarted)
 *   disk-full     the remote tmpfs full at the start, then with 20 KB left
 *   permission    the remote folder read-only (and the append file 0444), then mode 000
 *
 * Each run is checked like a soak run (see support/faults/scenario.ts): every remote file opens
 * with h5py after every fault, no source is deleted before its frame is committed, and at the end
 * every frame is stored exactly once and equals the camera's, and fur verify agrees.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { FUR_BIN } from '../pipeline/helpers.js';
import { FAULT_KINDS, SSH_KINDS, type FaultKind, type FaultStep, type Method, type RunPlan, type Ssh } from './support/faults/plan.js';
import type { RunOutcome } from './support/faults/scenario.js';
import { formatReport, soak } from './support/faults/soak.js';

const METHODS: readonly Method[] = ['append', 'batches', 'files'];

const STEPS: Record<FaultKind, Array<Partial<FaultStep>>> = {
  kill: [{ afterMs: 60 }, { afterMs: 500 }, { afterMs: 500 }],
  cut: [{ afterMs: 1, bytes: 700 }, { afterMs: 300, bytes: 9_000 }, { afterMs: 300, bytes: 40_000 }],
  stall: [{ afterMs: 200, holdMs: 400 }, { afterMs: 200, holdMs: 2_500 }],
  slow: [{ afterMs: 200, rate: 3_000, holdMs: 1_500 }],
  'sshd-restart': [{ afterMs: 200, downMs: 0 }, { afterMs: 300, downMs: 2_500 }],
  'disk-full': [{ afterMs: 1, leave: 0, holdMs: 1_500 }, { afterMs: 300, leave: 20_000, holdMs: 2_500 }],
  permission: [{ afterMs: 300, mode: 0o555, fileReadOnly: true, holdMs: 1_500 }, { afterMs: 300, mode: 0o000, holdMs: 2_000 }],
};

function plan(run: number, method: Method, kind: FaultKind, ssh: Ssh): RunPlan {
  const base: Omit<FaultStep, 'kind'> = {
    afterMs: 100, holdMs: 1_000, bytes: 1_000, rate: 10_000, mode: 0o555, fileReadOnly: false, leave: 0, downMs: 0, overlap: false,
  };
  return {
    run, seed: 9_000 + run, method, format: run % 2 ? 'tiff' : 'raw', dtype: 'uint16', shape: [16, 16],
    frames: 40, fps: 25, batch: 4, batchSeconds: 0.5, giveUpAfter: 1.5, parallel: 2,
    faults: STEPS[kind].map((s) => ({ ...base, kind, ...s })),
    restartIntoFault: run % 2 === 0,
    ssh,
  };
}

// every pairing over both SSH transports: what ssh reports when a fault hits must end the same way
const plans = SSH_KINDS.flatMap((ssh, s) => METHODS.flatMap((m, i) => FAULT_KINDS.map((k, j) => plan(1 + (s * METHODS.length + i) * FAULT_KINDS.length + j, m, k, ssh))));
const outcomes = new Map<number, RunOutcome>();

describe('each fault kind × each method × each SSH transport', () => {
  before(async () => {
    const report = await soak({
      runs: plans.length, plans, lanes: Number(process.env.FUR_SOAK_LANES ?? 4), seed: 0, furBin: FUR_BIN, maxFailures: plans.length,
      onRun: (o) => outcomes.set(o.run, o),
    });
    console.log(formatReport(report).replace(/seed 0: /, ''));
  });

  for (const p of plans) {
    const kind = p.faults[0]!.kind;
    test(`${p.ssh}: ${p.method} × ${kind}`, () => {
      const o = outcomes.get(p.run);
      assert.ok(o, 'the run took place');
      assert.deepEqual(o.problems, [], `run ${p.run} (${p.ssh}, ${p.method}, ${kind}):\n${o.log.slice(-2).join('\n')}`);
      assert.ok(o.counts.faults[kind] >= 1, `the ${kind} fault took effect`);
      assert.equal(o.counts.framesChecked, p.frames, 'every frame read back');
      assert.equal(o.counts.lost + o.counts.duplicated + o.counts.wrong + o.counts.prematureDeletions + o.counts.openFailures, 0);
    });
  }
});
