/**
 * fur against ProFTPD's mod_sftp (Debian's proftpd-core and proftpd-mod-crypto, unpacked, not
 * installed): the pipeline's cases (support/server-matrix.ts). mod_sftp announces no
 * limits@openssh.com, so fur writes 32 KiB requests.
 */
import { describe } from 'node:test';
import { serverMatrix } from './support/server-matrix.js';
import { startProftpdSftp } from './support/sftp-servers.js';

describe('ProFTPD mod_sftp', () => serverMatrix(() => startProftpdSftp(), { durable: true }));
