#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import { main } from '../dist/src/cli/main.js';

let settled = false;
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`fur: ${err?.message ?? err}`); process.exitCode = 1; },
).finally(() => {
  settled = true;
  // The command is over and has said so; a connection or handle some library failed to close
  // must not keep the process (and whoever waits for it) running: a last resort, after a grace
  // long enough for orderly closes, and it does not itself keep the process alive.
  setTimeout(() => process.exit(), 5000).unref();
});

// Node exits once nothing is left to wait for, even while the command still waits on a promise
// nothing will settle; it must not then exit 0, as if every frame were committed.
process.on('beforeExit', () => {
  if (settled) return;
  console.error('fur: stopped before the command finished (an internal wait that can never end); local files not yet committed are kept — run the same command again to resume');
  process.exitCode = 1;
});
