#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import { setFlagsFromString } from 'node:v8';
import { main } from '../dist/src/cli/main.js';

// A run streams gigabytes through buffers that outlive a young-generation collection, while the
// heap itself stays near 10 MB. V8 sizes so small an old generation so tightly that it marked
// the whole heap every ~50 ms: 89 full collections for a 1 GB append, about a sixth of the CPU.
// Letting the old generation grow 4x between collections leaves ~35: measured 4.27 -> 3.75 CPU
// s/GB on loopback and 5.5 -> 3.9 over 1 Gbit/s x 50 ms (10 GB). That alone let peak RSS reach
// 195 MB at 10 GB, most of it a young generation grown to 32 MB that buys nothing here: kept
// at its first size it is 167 MB, for ~0.1 CPU s/GB. Set here, in the command, not in the
// library: an application that embeds fur keeps its own heap settings.
setFlagsFromString('--heap-growing-percent=300');
setFlagsFromString('--semi-space-growth-factor=1');

let settled = false;
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`fur: ${err?.message ?? err}`); process.exitCode = 1; },
).finally(() => {
  settled = true;
  // The command is over and has said so: every frame is committed or kept, and fur has closed its
  // side of every connection. Exit once what it printed is out, rather than when the last socket
  // has closed: the server's side of an SSH connection closes half a round trip or more later,
  // and ssh2's keepalive timer lives until then (~40 ms per run at 50 ms). A connection or handle
  // some library failed to close cannot keep the process (and whoever waits for it) running.
  void Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => process.exit());
  // a last resort, should an output stream never drain; it does not itself keep the process alive
  setTimeout(() => process.exit(), 5000).unref();
});

/** Resolves once a stream has handed everything written to it to the system. */
function flushed(stream) {
  return stream.writableLength === 0 ? Promise.resolve() : new Promise((resolve) => stream.once('drain', resolve));
}

// Node exits once nothing is left to wait for, even while the command still waits on a promise
// nothing will settle; it must not then exit 0, as if every frame were committed.
process.on('beforeExit', () => {
  if (settled) return;
  console.error('fur: stopped before the command finished (an internal wait that can never end); local files not yet committed are kept — run the same command again to resume');
  process.exitCode = 1;
});
