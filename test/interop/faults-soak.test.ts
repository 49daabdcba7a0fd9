/**
 * The fault soak (issue 4): hundreds of randomized fault runs — connection cuts at any byte,
 * stalls, slow links, SIGKILL of `fur watch` at any moment, OpenSSH restarts and outages, a remote
 * disk that fills up and empties, a remote folder that turns read-only — across the three
 * methods (append mostly), several runs side by side, each bounded in time.
 *
 * After every fault and at the end of every run (support/faults/scenario.ts): every remote file
 * opens with h5py, every stored frame equals the camera's, no local source is gone before its
 * frame is committed; at the end no frame is lost or stored twice, fur verify agrees.
 *
 * FUR_SOAK_RUNS (default 300), FUR_SOAK_LANES (default 4), FUR_SOAK_SEED (default: random,
 * printed) and FUR_SOAK_ONLY=3,17 (replay runs of that seed). Longer: test/interop/soak.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FUR_BIN } from '../pipeline/helpers.js';
import { FAULT_KINDS } from './support/faults/plan.js';
import { formatReport, seedFromEnv, soak } from './support/faults/soak.js';

// Once: the soak reported and passed, and this process never ended — node spun at exit (all CPU,
// no system calls, in its final clean-up) waiting for a libuv request that nothing would finish,
// among the thousands of sockets, children and files the soak opened and killed. The test's
// verdict is in by 'exit'; what is still pending is named, then the process ends without that
// clean-up, so one stray request cannot hold CI until its time limit.
process.once('exit', (code) => {
  const pending = (process as unknown as { _getActiveRequests?: () => object[] })._getActiveRequests?.() ?? [];
  if (pending.length) console.error(`# fault soak: at exit, ${pending.length} requests still pending: ${pending.map((r) => r.constructor.name).join(', ')}`);
  process.exit(code);
});

const RUNS = Number(process.env.FUR_SOAK_RUNS ?? 300);
const LANES = Number(process.env.FUR_SOAK_LANES ?? 4);

test(`fault soak: ${RUNS} randomized fault runs, every frame exactly once, every file readable, no premature deletion`, async () => {
  const { seed, only } = seedFromEnv();
  // first, so that a run that hangs can still be replayed
  console.log(`fault soak: seed ${seed}, ${only ? `runs ${only.join(',')}` : `${RUNS} runs`}, ${LANES} lanes (replay: FUR_SOAK_SEED=${seed})`);
  const report = await soak({
    runs: RUNS, lanes: LANES, seed, only, furBin: FUR_BIN,
    onRun: (o, line) => { if (!o.ok) console.log(line); },
  });
  const text = formatReport(report);
  console.log(text);
  const c = report.counts;
  assert.deepEqual(report.failures.map((f) => f.run), [], `failed runs (seed ${seed}):\n${text}`);
  assert.equal(c.runs, only?.length ?? RUNS, 'every run took place');
  assert.equal(c.lost, 0, 'frames lost');
  assert.equal(c.duplicated, 0, 'frames stored twice');
  assert.equal(c.wrong, 0, 'frames that differ from the camera\'s');
  assert.equal(c.prematureDeletions, 0, 'sources deleted before their commit');
  assert.equal(c.openFailures, 0, 'remote files h5py could not open');
  assert.equal(c.leftovers, 0, 'local files or remote temporaries left after a clean finish');
  assert.equal(c.verified, c.runs, 'fur verify ran on every run');
  if (!only && RUNS >= 100) {
    // the mix did what it should: every kind of fault, many times, on every method
    for (const kind of FAULT_KINDS) assert.ok(c.faults[kind] >= RUNS / 20, `${kind}: ${c.faults[kind]} faults`);
    assert.ok(c.methods.append > c.methods.batches && c.methods.batches > 0 && c.methods.files > 0, `methods: ${JSON.stringify(c.methods)}`);
    assert.ok(c.ssh.openssh >= RUNS / 4 && c.ssh.builtin >= RUNS / 4, `ssh: ${JSON.stringify(c.ssh)}`);
    assert.ok(c.framesChecked >= RUNS * 20, `frames checked: ${c.framesChecked}`);
  }
});
