/**
 * A stand-in for OpenSSH's `ssh -s HOST sftp`, for the npm tier (no OpenSSH needed): it takes
 * the arguments fur's OpenSSH transport passes, logs in to the in-process server with ssh2 (the
 * password from $FAKE_SSH_PASSWORD), starts the sftp subsystem and joins it to its own
 * stdin and stdout, as ssh does. So fur's SFTP client, its pipes, its process handling and the
 * pool over several processes run for real against ssh2's SFTP server; what ssh itself does
 * (host keys, configuration, its messages) is tested against OpenSSH in the interop tier.
 *
 * $FAKE_SSH_LOG: a file each run appends its process id and arguments to (one JSON line).
 */
import { appendFileSync } from 'node:fs';
import ssh2 from 'ssh2';

const args = process.argv.slice(2);
if (process.env.FAKE_SSH_LOG) appendFileSync(process.env.FAKE_SSH_LOG, `${JSON.stringify({ pid: process.pid, args })}\n`);

const WITH_VALUE = new Set(['-F', '-i', '-l', '-o', '-p']);
let user = process.env.USER ?? 'root';
let port = 22;
const rest: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--') { rest.push(...args.slice(i + 1)); break; }
  if (WITH_VALUE.has(a)) {
    const v = args[++i]!;
    if (a === '-l') user = v;
    if (a === '-p') port = Number(v);
  } else if (!a.startsWith('-')) {
    rest.push(...args.slice(i));
    break;
  }
}
const [host, subsystem] = rest;

function die(message: string): never {
  process.stderr.write(`fake-ssh: ${message}\n`);
  process.exit(255);
}

if (!host || subsystem !== 'sftp' || !args.includes('-s')) die(`expected -s HOST sftp, got ${args.join(' ')}`);
const client = new ssh2.Client();
// EOF on stdin ends the session, as ssh's does (OpenSSH's sftp-server exits on it; ssh2's does not)
let ending = false;
client.on('error', (e) => die(e.message));
client.on('close', () => (ending ? process.exit(0) : die('connection closed')));
client.on('ready', () => {
  client.subsys('sftp', (err, stream) => {
    if (err) die(`subsystem: ${err.message}`);
    process.stdin.pipe(stream);
    process.stdin.on('end', () => { ending = true; client.end(); });
    stream.pipe(process.stdout);
    stream.on('close', () => process.exit(0));
  });
});
client.connect({ host, port, username: user, password: process.env.FAKE_SSH_PASSWORD, hostVerifier: () => true, readyTimeout: 20_000 });
