/**
 * The command's exit codes: 0 done, 2 the command line (or config) was wrong and nothing was
 * attempted, 1 the run could not continue, 3 the run finished but kept files it could not use.
 * A script driving fur decides on these, so every error tag is mapped here, by a switch the
 * compiler checks: a new tag does not build until it has its code.
 */
import { unreachable, type FurErrorTag } from '../errors.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, kept: 3 } as const;

export function exitCodeOf(tag: FurErrorTag): 1 | 2 {
  switch (tag) {
    // what the user typed: an option, a URL, a pattern, a shape, a file a setting names
    case 'bad-option': case 'bad-setting': case 'bad-pattern': case 'bad-shape': case 'unknown-dtype':
    case 'bad-url': case 'bad-slice': case 'bad-identity': case 'missing-password': case 'method-unsupported':
    case 'raw-needs-layout': case 'needs-sources': case 'config-file': case 'bad-source': case 'serve-failed': case 'no-source':
      return EXIT.usage;
    case 'bad-frame': case 'name-committed': case 'name-repeated': case 'capture-closed': case 'attrs-unsupported':
    case 'stream-message': case 'spool-damaged': case 'filter-unsupported':
      return EXIT.failed;
    case 'unsafe-name': case 'name-reused':
    case 'unreadable-dir': case 'unreadable-file': case 'empty-file': case 'empty-frame': case 'frame-mismatch':
    case 'raw-size': case 'npy-bad-header': case 'npy-fortran-order': case 'npy-size': case 'npy-truncated':
    case 'npy-unsupported-dtype': case 'tiff-bad-header': case 'tiff-decode': case 'tiff-mixed-pages':
    case 'tiff-truncated': case 'tiff-unsupported':
    case 'connect-failed': case 'auth-failed': case 'ssh-not-found': case 'bad-ssh-config': case 'host-key-changed': case 'host-key-revoked': case 'unknown-host-key':
    case 'known-hosts-unreadable': case 'known-hosts-unwritable': case 'tls-certificate': case 'tls-unavailable':
    case 'wrong-region': case 'http-failed':
    case 'connection-lost': case 'destination-closed': case 'file-closed': case 'remote-failed': case 'remote-write-failed':
    case 'remote-refused': case 'io-failed': case 'not-found': case 'permission-denied': case 'not-a-directory': case 'wrong-type':
    case 'overwrite-refused': case 'rename-unsupported': case 'unsupported-operation': case 'ftp-refused':
    case 'ftp-unsupported': case 'read-only': case 'exists': case 'gave-up': case 'stopped-disconnected':
    case 'lease-held': case 'lease-busy': case 'lease-lost': case 'lease-expired':
    case 'append-order': case 'not-readable': case 'too-many-parts': case 'upload-aborted': case 'upload-lost':
    case 'upload-mismatch': case 'bad-upload-record': case 'object-complete': case 'metadata-full':
    case 'hdf5-format': case 'hdf5-usage': case 'checksum-mismatch': case 'layout-mismatch': case 'not-a-fur-file':
    case 'not-a-file': case 'no-dataset': case 'no-hashes': case 'read-back-differs':
    case 'bad-config': case 'bad-key': case 'internal':
      return EXIT.failed;
    default:
      return unreachable(tag);
  }
}
