// A DAQ program's side of `fur stream`: frames sent over ZeroMQ in fur's plain format.
//
//   node examples/stream-plain-sender.mjs [DIR]      (DIR: where run.h5 goes; default a new temporary folder)
//
// The sender binds a PUSH socket; fur connects its PULL socket to it and stores the series:
//
//   fur stream tcp://daq.lab:5555 sftp://me@archive.lab/runs/run42.h5
//
// Here both ends run on this machine: the example starts `fur stream` itself (the command of the
// installed package) into a file:// destination, sends one series, and reads the file back with
// h5wasm (`npm install h5wasm`). Plain format: part 1 is JSON { frame, shape, dtype, name?, attrs? },
// part 2 the frame's bytes (C order, little-endian); { "end": true } ends the series.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import h5wasm from 'h5wasm/node';
import { Push } from 'zeromq';

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'fur-example-'));
const file = join(dir, 'run.h5');
const SHAPE = [48, 64];
const FRAMES = 40;

function frame(i) {
  const f = new Uint16Array(SHAPE[0] * SHAPE[1]);
  for (let p = 0; p < f.length; p++) f[p] = (1000 * i + p) % 65536;
  return f;
}

const sock = new Push();
await sock.bind('tcp://127.0.0.1:*'); // a DAQ would bind a fixed port on its data network
const endpoint = sock.lastEndpoint;

// fur's command from the installed package: `npx fur stream …` in a shell
const furBin = join(dirname(createRequire(import.meta.url).resolve('fur/package.json')), 'bin', 'fur.js');
const fur = spawn(process.execPath, [furBin, 'stream', endpoint, `file://${file}`, '--format', 'plain', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
let series;
createInterface({ input: fur.stdout }).on('line', (line) => {
  const event = JSON.parse(line);
  if (event.type === 'series') series = event; // printed once the series' file is closed
});
const exited = new Promise((resolve) => fur.on('exit', resolve));
// fur gone before the series ends (a bad option, a destination it cannot open): stop sending
void exited.then(() => { if (!sock.closed) sock.close(); });

try {
  for (let i = 0; i < FRAMES; i++) {
    const head = { frame: i, shape: SHAPE, dtype: 'uint16', attrs: { exposure_ms: 10 } };
    const data = frame(i);
    // resolves once ZeroMQ has queued the message: a receiver that falls behind holds the sender back
    await sock.send([JSON.stringify(head), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
  }
  await sock.send(JSON.stringify({ end: true }));
} catch (e) {
  console.error(`fur stream ended (exit ${await exited}) before the series was sent: ${e.message}`);
  process.exit(1);
}
const code = await exited;

await h5wasm.ready;
const h5 = new h5wasm.File(file, 'r');
const data = h5.get('/entry/data/data');
const stored = data.value;
const frameSize = SHAPE[0] * SHAPE[1];
let equal = 0;
for (let i = 0; i < data.shape[0]; i++) {
  const sent = frame(i);
  if (stored.subarray(i * frameSize, (i + 1) * frameSize).every((v, p) => v === sent[p])) equal++;
}
h5.close();

console.log(JSON.stringify({ file, endpoint, furExit: code, frames: series?.frames, missing: series?.missing, shape: data.shape, equal }));
if (code !== 0 || equal !== FRAMES) process.exit(1);
