// Frames pushed from memory into one HDF5 file on an SFTP server, then checked there.
//
//   FUR_PASSWORD=… node examples/capture-to-sftp.mjs sftp://me@archive.lab/runs/run42.h5 [KNOWN_HOSTS]
//
// The password is read from the environment variable named by `passwordEnv` (or give `identity`,
// an SSH key file, instead); the server's key must be in KNOWN_HOSTS (default ~/.ssh/known_hosts).
// `verify` with no folder reads every frame back over SFTP and compares it with the SHA-256 fur
// recorded when it stored it. Prints one JSON line.
import { openCapture, verify, isFurError } from 'fur';

const [url, knownHosts] = process.argv.slice(2);
if (!url) {
  console.error('usage: FUR_PASSWORD=… node capture-to-sftp.mjs sftp://user@host[:port]/path/run.h5 [known_hosts]');
  process.exit(2);
}
const connection = { passwordEnv: 'FUR_PASSWORD', knownHosts };
const SHAPE = [64, 80];
const FRAMES = 25;

function frame(i) {
  const f = new Uint16Array(SHAPE[0] * SHAPE[1]);
  for (let p = 0; p < f.length; p++) f[p] = (1000 * i + p) % 65536;
  return f;
}

try {
  const capture = await openCapture(url, { ...connection, dtype: 'uint16', shape: SHAPE, batch: 10 });
  // a program restarted after a crash re-opens the same destination and skips what is committed
  const already = capture.committed.size;
  for (let i = 0; i < FRAMES; i++) {
    const name = `frame_${String(i).padStart(6, '0')}`;
    if (!capture.committed.has(name)) await capture.append(frame(i), { name, attrs: { exposure_ms: 10 } });
  }
  const summary = await capture.close();
  const report = await verify(undefined, url, connection);
  console.log(JSON.stringify({ url, alreadyCommitted: already, frames: summary.frames, verified: report.equal, different: report.different.length }));
  if (report.equal !== FRAMES || report.different.length) process.exit(1);
} catch (e) {
  // every error fur raises is a FurError: a tag to act on and a one-line message
  if (!isFurError(e)) throw e;
  console.error(`fur: ${e.message} (${e.tag})`);
  process.exit(1);
}
