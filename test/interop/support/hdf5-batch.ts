/** Many files through h5py in one Python process (hdf5-batch.py), and h5dump over each. */
import { join } from 'node:path';
import type { H5Doc } from '../../support/h5json.js';
import { run } from '../../../harness/run.js';
import { H5DUMP, h5env, PYTHON, SUPPORT_DIR } from './h5py.js';

export const BATCH_PY = join(SUPPORT_DIR, 'hdf5-batch.py');

export type BatchResult = { file: string; ok: true; doc: H5Doc } | { file: string; ok: false; stage: 'open' | 'read'; error: string };

/** h5py's description of every file (or why it could not), in order. */
export async function h5pyBatch(files: string[], timeoutMs = 300_000): Promise<BatchResult[]> {
  if (!files.length) return [];
  const r = await run(PYTHON, [BATCH_PY, '--stdin'], { input: files.join('\n') + '\n', env: h5env(), timeoutMs });
  if (r.code !== 0) throw new Error(`hdf5-batch.py exited ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}:\n${r.stderr.slice(-3000)}`);
  const lines = r.stdout.toString('utf8').trim().split('\n').filter(Boolean);
  const out = lines.map((l) => JSON.parse(l) as BatchResult);
  if (out.length !== files.length) throw new Error(`hdf5-batch.py described ${out.length} of ${files.length} files:\n${r.stderr.slice(-3000)}`);
  out.forEach((o, i) => { if (o.file !== files[i]) throw new Error(`hdf5-batch.py answered for ${o.file}, expected ${files[i]}`); });
  return out;
}

/**
 * h5dump (HDF5 1.10.8) over the whole file, values included: it must exit 0 and print no error
 * anywhere (h5dump reports a bad object and carries on, so the exit code alone is not enough).
 * Returns the dump.
 */
export async function h5dumpStrict(file: string): Promise<string> {
  const r = await run(H5DUMP, [file], { env: h5env(), timeoutMs: 300_000 });
  const out = r.stdout.toString('utf8');
  const bad = /h5dump error|HDF5-DIAG|unable to|failed/i;
  if (r.code !== 0 || bad.test(r.stderr) || /h5dump error|HDF5-DIAG/i.test(out) || r.stderr.trim()) {
    throw new Error(`h5dump ${file}: exit ${r.code ?? r.signal}\n${(r.stderr + '\n' + out).trim().split('\n').slice(-20).join('\n')}`);
  }
  return out;
}

/** h5dump over each file, a few at a time; rejects with the first failure. */
export async function h5dumpAll(files: string[], parallel = 3): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++]!;
      await h5dumpStrict(f);
      done++;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return done;
}
