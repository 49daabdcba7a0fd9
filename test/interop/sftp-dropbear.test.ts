/**
 * fur against dropbear (Debian's dropbear-bin, 24 KiB channel window) running OpenSSH's
 * sftp-server: the pipeline's cases (support/server-matrix.ts).
 */
import { describe } from 'node:test';
import { serverMatrix } from './support/server-matrix.js';
import { startDropbear } from './support/sftp-servers.js';

describe('dropbear + OpenSSH sftp-server', () => serverMatrix(() => startDropbear(), { durable: true }));
