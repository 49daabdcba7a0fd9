/**
 * The fault soak, as long as asked: `npx tsc -p tsconfig.json && node dist/test/interop/soak.js --runs 1000`.
 * Options: --runs N (default 1000), --lanes N (default 4), --seed S (or FUR_SOAK_SEED), --only 3,17
 * (or FUR_SOAK_ONLY) to replay runs, --long (longer captures, up to 6 faults per run), --methods
 * append,files and --kinds kill,cut (only those), --quiet (print failing runs only).
 * Needs root (tmpfs mounts), Debian's openssh-server, python3-h5py and hdf5-tools, like the interop tier.
 * Exits 1 if any run failed or any count that must be zero is not.
 */
import { parseArgs } from 'node:util';
import { FUR_BIN } from '../pipeline/helpers.js';
import { formatReport, seedFromEnv, soak } from './support/faults/soak.js';
import { FAULT_KINDS, type FaultKind, type Method } from './support/faults/plan.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    lanes: { type: 'string', default: '4' },
    seed: { type: 'string' },
    only: { type: 'string' },
    long: { type: 'boolean', default: false },
    methods: { type: 'string' },
    kinds: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    'max-failures': { type: 'string', default: '20' },
  },
});
const env = seedFromEnv();
const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : env.seed;
const only = values.only ? values.only.split(',').map(Number) : env.only;
const methods = values.methods?.split(',') as Method[] | undefined;
const kinds = values.kinds?.split(',') as FaultKind[] | undefined;
for (const k of kinds ?? []) if (!FAULT_KINDS.includes(k)) throw new Error(`--kinds: ${k} is not one of ${FAULT_KINDS.join(', ')}`);
console.log(`fault soak: seed ${seed}${only ? `, runs ${only.join(',')}` : `, ${values.runs} runs`}, ${values.lanes} lanes${values.long ? ', long runs' : ''}`);
const report = await soak({
  runs: Number(values.runs), lanes: Number(values.lanes), seed, only, long: values.long, methods, kinds, furBin: FUR_BIN,
  maxFailures: Number(values['max-failures']), cliVerifyEvery: 5, h5dumpEvery: 3,
  onRun: (o, line) => { if (!values.quiet || !o.ok) console.log(line); },
});
console.log(formatReport(report));
const c = report.counts;
const bad = report.failures.length + c.lost + c.duplicated + c.wrong + c.prematureDeletions + c.openFailures + c.leftovers;
process.exitCode = bad ? 1 : 0;
