/**
 * The benchmark's datasets, written once into bench/data/throughput/ and reused (deterministic:
 * the same bytes on every machine):
 *
 * - thesis: 1,800 frames of 434×434×3 uint8 as TIFF files (~1 GB), the FUR thesis case;
 * - jpeg: 1,800 opaque files of JPEG size (~185 KB each, 140-230 KB), incompressible;
 * - engas: 20,000 files of 66 KB, incompressible (the ENGAS case).
 *
 * Each also exists as one file holding all its bytes, for the "one file" runs of the peers.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { runCamera } from '../src/source/camera.js';
import { sortSequence } from '../src/source/sequence.js';

export interface Dataset {
  name: string;
  /** what it stands for, for the report */
  label: string;
  dir: string;
  /** every file of `dir`, in order */
  files: string[];
  /** all bytes of `files` back to back */
  oneFile: string;
  bytes: number;
  /** fur's --pattern for the files */
  pattern: string;
}

interface Spec {
  name: string;
  label: string;
  count: number;
  pattern: string;
  write(dir: string): Promise<void>;
}

/** Incompressible, reproducible bytes: an AES-128-CTR key stream keyed by the dataset and file. */
function bytesFor(dataset: string, index: number, size: number): Buffer {
  const key = createHash('sha256').update(`fur-bench/${dataset}`).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(index, 0);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(size));
}

const SPECS: Spec[] = [
  {
    name: 'thesis',
    label: '1,800 frames 434×434×3 uint8 (TIFF, ~1 GB)',
    count: 1800,
    pattern: 'frame*.tif',
    write: (dir) => runCamera({ dir, format: 'tiff', dtype: 'uint8', shape: [434, 434, 3], frames: 1800, seed: 1 }).then(() => undefined),
  },
  {
    name: 'jpeg',
    label: '1,800 JPEG-sized files (~185 KB)',
    count: 1800,
    pattern: 'img*.jpg',
    write: async (dir) => {
      for (let i = 1; i <= 1800; i++) {
        // sizes spread over 140-230 KB, mean 185 KB, in a fixed order
        const size = 185_000 + ((i * 7919) % 90_001) - 45_000;
        writeFileSync(join(dir, `img${String(i).padStart(6, '0')}.jpg`), bytesFor('jpeg', i, size));
      }
    },
  },
  {
    name: 'engas',
    label: '20,000 files of 66 KB',
    count: 20000,
    pattern: 's*.dat',
    write: async (dir) => {
      for (let i = 1; i <= 20000; i++) writeFileSync(join(dir, `s${String(i).padStart(6, '0')}.dat`), bytesFor('engas', i, 66_000));
    },
  },
];

export const DATASET_NAMES = SPECS.map((s) => s.name);

/** Write a dataset if it is not there yet (or incomplete), and describe it. */
export async function prepare(root: string, name: string, log: (m: string) => void): Promise<Dataset> {
  const spec = SPECS.find((s) => s.name === name);
  if (!spec) throw new Error(`unknown dataset ${name} (have ${DATASET_NAMES.join(', ')})`);
  const base = join(root, spec.name);
  const dir = join(base, 'files');
  const oneFile = join(base, 'all.bin');
  const marker = join(base, '.complete');
  if (!existsSync(marker)) {
    rmSync(base, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    log(`writing dataset ${spec.name}: ${spec.label} into ${dir} …`);
    await spec.write(dir);
    const fd = openSync(oneFile, 'w');
    try {
      for (const n of sortSequence(readdirSync(dir))) writeSync(fd, readFileSync(join(dir, n)));
    } finally {
      closeSync(fd);
    }
    writeFileSync(marker, '');
  }
  const files = sortSequence(readdirSync(dir)).map((n) => join(dir, n));
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  if (files.length !== spec.count || statSync(oneFile).size !== bytes) throw new Error(`${base} is incomplete; delete it and run again`);
  return { name: spec.name, label: spec.label, dir, files, oneFile, bytes, pattern: spec.pattern };
}
