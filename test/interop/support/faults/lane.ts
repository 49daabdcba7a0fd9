/**
 * One lane of the fault harness: a private OpenSSH server whose SFTP root is a small tmpfs, a
 * fault proxy in front of it, and a persistent h5py reader. Fault runs in one lane run one after
 * another (a disk-full or server-restart fault must not hit a neighbour); lanes run side by side.
 *
 * The tests run as root, and root ignores file modes. So that a chmod of the remote folder
 * means what it means for a lab's upload account, sshd runs each SFTP session as root without
 * CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (setpriv drops them from the bounding set): mode bits
 * then apply to the session as to any owner.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd, type Sshd } from '../../../../harness/sshd.js';
import { H5Checker } from './h5check.js';
import { FaultProxy } from './proxy.js';
import { Tmpfs } from './remote-fs.js';

const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

export class Lane {
  private constructor(
    readonly id: number,
    readonly dir: string,
    readonly sshd: Sshd,
    readonly proxy: FaultProxy,
    readonly fs: Tmpfs,
    readonly h5: H5Checker,
  ) {}

  /** the remote root (the tmpfs), as a local path */
  get root(): string {
    return this.fs.dir;
  }

  static async start(id: number, dir: string, tmpfsBytes: number): Promise<Lane> {
    mkdirSync(dir, { recursive: true });
    const home = join(dir, 'home');
    mkdirSync(home);
    const fs = await Tmpfs.mount(join(dir, 'remote'), tmpfsBytes);
    let sshd: Sshd | undefined;
    try {
      sshd = await startSshd({
        root: fs.dir,
        sftpServer: 'external',
        logLevel: 'ERROR',
        extraConfig: [
          `ForceCommand /usr/bin/setpriv --bounding-set=-dac_override,-dac_read_search ${SFTP_SERVER} -d ${fs.dir}`,
          // the forced command runs through root's shell, which would read root's ~/.bashrc (slow
          // or noisy set-ups there stall every session); an empty home keeps the machine's out
          `SetEnv HOME=${home}`,
        ],
      });
      const proxy = await FaultProxy.start({ host: sshd.host, port: sshd.port });
      // the client connects to the proxy's port; the key is the server's
      writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${proxy.port} ${sshd.hostKeyLine}\n`);
      return new Lane(id, dir, sshd, proxy, fs, new H5Checker());
    } catch (e) {
      await sshd?.dispose().catch(() => undefined);
      await fs.unmount().catch(() => undefined);
      throw e;
    }
  }

  /** sftp:// URL of an absolute remote path, through the proxy */
  url(path: string): string {
    return `sftp://${this.sshd.user}@127.0.0.1:${this.proxy.port}${path}`;
  }

  /** CLI flags that log in (known_hosts lists the server under the proxy's port too) */
  flags(): string[] {
    return ['--identity', this.sshd.identityFile, '--known-hosts', join(this.dir, 'known_hosts')];
  }

  async dispose(): Promise<void> {
    this.h5.close();
    await this.proxy.close().catch(() => undefined);
    await this.sshd.dispose().catch(() => undefined);
    await this.fs.free().catch(() => undefined);
    await this.fs.unmount();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
