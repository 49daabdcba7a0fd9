/**
 * fur stream against a sender fur's authors did not write: Debian's python3-zmq PUSHes a series
 * (support/zmq_sender.py) — DECTRIS EIGER stream v1 raw, LZ4 and bitshuffle-LZ4 (16- and 32-bit),
 * and the plain format, 1,200 frames each — and h5py (HDF5 1.10.8, bitshuffle frames through
 * Debian's plugin) reads back every frame equal to what was sent, and for EIGER the header's
 * detector configuration as NeXus fields with units. A frame number left out is reported and the
 * run exits 3.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { furBin } from '../pipeline/helpers.js';
import { h5env, python, PYTHON, SUPPORT_DIR } from './support/h5py.js';

const SENDER = join(SUPPORT_DIR, 'zmq_sender.py');
const PLUGINS = '/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins';
const FRAMES = 1200;
const ROWS = 24;
const COLS = 40;

/** Starts the sender; resolves with its endpoint once it is bound. */
function startSender(t: { after: (fn: () => void) => void }, args: string[]): Promise<string> {
  const child = spawn(PYTHON, [SENDER, ...args], { env: h5env(), stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => { child.kill('SIGKILL'); });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the sender exited (${code}) before it was bound`)));
    createInterface({ input: child.stdout! }).once('line', (port) => resolve(`tcp://127.0.0.1:${port.trim()}`));
  });
}

async function storeAndCheck(t: Parameters<typeof startSender>[0], format: string, encoding: string, dtype: string, skip?: number) {
  const dir = await mkdtemp(join(tmpdir(), 'fur-stream-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const endpoint = await startSender(t, [format, encoding, dtype, String(ROWS), String(COLS), String(FRAMES), ...(skip === undefined ? [] : [String(skip)])]);
  const file = join(dir, 'run.h5');
  const r = await furBin(['stream', endpoint, `file://${file}`, '--batch', '200'], { timeoutMs: 600_000 });
  const numbers = Array.from({ length: FRAMES }, (_, n) => n).filter((n) => n !== skip);
  const checked = JSON.parse(await python(
    'import sys, json; sys.path.insert(0, sys.argv[1]); import zmq_sender; print(zmq_sender.check_frames(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6])))',
    [SUPPORT_DIR, file, dtype, String(ROWS), String(COLS), JSON.stringify(numbers)],
    { env: { HDF5_PLUGIN_PATH: PLUGINS } },
  ));
  return { r, checked, numbers };
}

describe('fur stream from a python3-zmq sender, read back by h5py', () => {
  const cases: Array<[string, string, string]> = [
    ['eiger', '<', 'uint16'], ['eiger', 'lz4<', 'uint32'], ['eiger', 'bs16-lz4<', 'uint16'], ['eiger', 'bs32-lz4<', 'uint32'], ['plain', '<', 'uint16'],
  ];
  for (const [format, encoding, dtype] of cases) {
    test(`${format} ${encoding} ${dtype}: ${FRAMES} frames equal`, async (t) => {
      const { r, checked: { detector, ...checked } } = await storeAndCheck(t, format, encoding, dtype);
      assert.equal(r.code, 0, r.stderr);
      // the header's configuration in the NeXus detector group, each frame's start time beside it
      if (format === 'eiger') {
        assert.deepEqual(detector, {
          fields: {
            'detector/beam_center_x': [20.5, 'pixel'], 'detector/beam_center_y': [12, 'pixel'], 'detector/distance': [0.125, 'm'],
            'detector/count_time': [0.001, 's'], 'detector/x_pixel_size': [7.5e-5, 'm'], 'detector/sensor_thickness': [0.00045, 'm'],
            'detector/description': ['Dectris EIGER2 Si 4M', null], 'beam/incident_wavelength': [0.9763, 'angstrom'],
            'detector/detector_specific/trigger_mode': ['ints', null],
          },
          classes: ['NXdetector', 'NXbeam', 'NXcollection'],
          start_time: [true, 'ns'],
        });
      } else assert.equal(detector, undefined);
      assert.deepEqual(checked, {
        shape: [FRAMES, ROWS, COLS], dtype, equal: true, names: true,
        // stored as received: filter 32008 for bitshuffle-LZ4, fur's own Fletcher-32 otherwise
        filters: encoding.startsWith('bs') ? ['32008'] : ['fletcher32'],
      });
      assert.match(r.stderr, new RegExp(`fur stream: series 1: ${FRAMES} frames → `));
    });
  }

  test('a frame number the sender left out is reported, the others stored; exit 3', async (t) => {
    const { r, checked } = await storeAndCheck(t, 'eiger', 'bs16-lz4<', 'uint16', 500);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /series 1: frame 500 did not arrive \(frame 501 came after frame 499\)/);
    assert.deepEqual([checked.equal, checked.names, checked.shape], [true, true, [FRAMES - 1, ROWS, COLS]]);
  });
});
