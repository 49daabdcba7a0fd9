/**
 * The pipeline's cases (support/server-matrix.ts) against OpenSSH's sshd, the reference every
 * other server of the matrix is compared with (pipeline-openssh.test.ts runs long captures there).
 */
import { describe } from 'node:test';
import { serverMatrix } from './support/server-matrix.js';
import { startSshd } from '../../harness/sshd.js';

describe('OpenSSH', () => {
  serverMatrix(async () => {
    const sshd = await startSshd();
    return {
      name: 'OpenSSH',
      root: sshd.root,
      url: (path: string) => `sftp://${sshd.user}@${sshd.host}:${sshd.port}${path}`,
      flags: ['--identity', sshd.identityFile, '--known-hosts', sshd.knownHostsFile],
      dispose: () => sshd.dispose(),
    };
  }, { durable: true });
});
