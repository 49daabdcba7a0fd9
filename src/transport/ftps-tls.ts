/**
 * TLS for the destinations that speak it (FTPS, S3 over HTTPS): which certificates to trust and how a
 * refused certificate is told to a person.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { FurError } from '../errors.js';

export interface TlsTrustOptions {
  /**
   * PEM file with the certificates to trust besides the system's: a private CA, or a server's own
   * self-signed certificate. The server's name is still checked against the certificate.
   */
  caFile?: string;
}

/** The `ca` list for tls.connect / https.Agent: the system roots plus the given file, or undefined for the defaults. */
export async function trustedCertificates(opts: TlsTrustOptions): Promise<string[] | undefined> {
  if (!opts.caFile) return undefined;
  const text = await readFile(opts.caFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new FurError('bad-option', `--ca-file ${opts.caFile}: cannot read it (${e.code ?? e.message})`, { setting: '--ca-file', path: opts.caFile }, { cause: e });
  });
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) {
    throw new FurError('bad-option', `--ca-file ${opts.caFile}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`, { setting: '--ca-file', path: opts.caFile });
  }
  for (const p of pems) {
    try {
      new X509Certificate(p);
    } catch (e) {
      throw new FurError('bad-option', `--ca-file ${opts.caFile}: a certificate in it does not parse (${(e as Error).message})`, { setting: '--ca-file', path: opts.caFile }, { cause: e });
    }
  }
  // `ca` replaces Node's default roots: keep them, so a public endpoint still verifies
  return [...rootCertificates, ...pems];
}

const CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE', 'INVALID_CA',
]);

/** A certificate the client refused, as a FurError naming what to do; undefined for any other error. */
export function certificateError(e: unknown, where: string, fields: Record<string, unknown> = {}): FurError | undefined {
  const err = e as NodeJS.ErrnoException & { reason?: string; cert?: { subjectaltname?: string } };
  const code = err?.code ?? '';
  if (!CERT_CODES.has(code)) return undefined;
  let why: string;
  switch (code) {
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      why = `its certificate is for ${err.cert?.subjectaltname?.replace(/DNS:|IP Address:/g, '') || 'another name'} (${err.reason ?? err.message}); connect by a name the certificate lists`;
      break;
    case 'CERT_HAS_EXPIRED':
      why = 'its certificate has expired; renew it on the server';
      break;
    case 'CERT_NOT_YET_VALID':
      why = 'its certificate is not valid yet (check the clocks of both machines)';
      break;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT': case 'SELF_SIGNED_CERT_IN_CHAIN':
      why = 'its certificate is self-signed and not trusted; pass --ca-file with that certificate (or the CA that signed it) to trust it';
      break;
    default:
      why = `its certificate is not trusted (${code}); pass --ca-file with the CA that signed it`;
  }
  return new FurError('tls-certificate', `${where}: refused the server's TLS certificate: ${why}`, { ...fields, code }, { cause: e });
}
