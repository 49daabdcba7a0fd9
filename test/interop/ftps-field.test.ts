/**
 * The pipeline's cases (support/server-matrix.ts: batches and files — FTP cannot write into the
 * middle of a file —, --delete-source, verify with and without the sources and a changed byte,
 * SIGKILL and resume with leftover temporaries) against four FTPS servers fur's authors did not
 * write, TLS required on logins and data (ftps-servers.ts): vsftpd, ProFTPD with mod_tls,
 * pure-ftpd as Debian sets it up (logins of seconds, failed CWD throttled), pyftpdlib. FTP has no
 * fsync: the matrix checks that fur says so at start, and that every source deleted was stored
 * intact first. ftps-vsftpd.test.ts runs long captures and refusals against vsftpd.
 */
import { describe } from 'node:test';
import { FTPS_SERVERS, startFtpsServer } from '../../harness/ftps-servers.js';
import { serverMatrix } from './support/server-matrix.js';

for (const name of FTPS_SERVERS) {
  describe(`FTPS: ${name}`, () => {
    serverMatrix(() => startFtpsServer(name), { methods: ['batches', 'files'], durable: false });
  });
}
