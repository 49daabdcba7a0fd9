/**
 * Certificates for the test tier's in-process TLS servers (FTPS, S3 over HTTPS) and the
 * certificate checks of the transport tests: self-signed, or signed by a CA made here.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

export interface Certificate {
  cert: string;
  key: string;
  /** parsed, for tests that want its fields */
  x509: X509Certificate;
}

export interface CertificateOptions {
  /** common name of the subject (default: the first DNS name, or 'fur test') */
  commonName?: string;
  /** DNS names the certificate is for (subjectAltName) */
  dnsNames?: string[];
  /** IP addresses the certificate is for (subjectAltName) */
  ipAddresses?: string[];
  /** a certificate authority (basicConstraints CA:TRUE, may sign others) */
  ca?: boolean;
  /** sign with this CA instead of self-signing */
  issuer?: Certificate;
  /** valid from now − 1 day to now + days (default 30); negative: already expired */
  days?: number;
}

/** A fresh ECDSA P-256 certificate and key, PEM — self-signed, or signed by `issuer`. */
export function makeCertificate(o: CertificateOptions = {}): Certificate {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const cn = o.commonName ?? o.dnsNames?.[0] ?? 'fur test';
  const issuerName = o.issuer ? new X509Certificate(o.issuer.cert).subject.split('\n').find((l) => l.startsWith('CN='))!.slice(3) : cn;
  const signer: KeyObject = o.issuer ? createPrivateKey(o.issuer.key) : privateKey;
  const days = o.days ?? 30;
  const now = Date.now();
  const notBefore = new Date(Math.min(now - 86_400_000, now + days * 86_400_000 - 2 * 86_400_000));
  const notAfter = new Date(now + days * 86_400_000);
  const serial = randomBytes(8);
  serial[0] &= 0x7f;
  const exts: Uint8Array[] = [];
  const names = [
    ...(o.dnsNames ?? []).map((n) => tlv(0x82, Buffer.from(n, 'ascii'))),
    ...(o.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  if (names.length) exts.push(extension('2.5.29.17', false, seq(...names)));
  if (o.ca) {
    exts.push(extension('2.5.29.19', true, seq(tlv(0x01, Buffer.from([0xff])))));
    // keyCertSign + cRLSign + digitalSignature
    exts.push(extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x01, 0x86]))));
  } else {
    exts.push(extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80])))); // digitalSignature
    exts.push(extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1')))); // serverAuth
  }
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    ecdsaSha256,
    dn(issuerName),
    seq(utcTime(notBefore), utcTime(notAfter)),
    dn(cn),
    spki,
    tlv(0xa3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, { key: signer, dsaEncoding: 'der' });
  const der = seq(tbs, ecdsaSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const cert = `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { cert, key, x509: new X509Certificate(cert) };
}

// DER, as much of it as a certificate needs
function tlv(tag: number, body: Uint8Array): Buffer {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
function seq(...items: Uint8Array[]): Buffer { return tlv(0x30, Buffer.concat(items)); }
/** DER INTEGER: minimal (no leading zero bytes a reader would call padding), positive */
function integer(b: Uint8Array): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && !(b[i + 1]! & 0x80)) i++;
  const v = b.subarray(i);
  return tlv(0x02, v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : Buffer.from(v));
}
function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const bytes = [p & 0x7f];
    for (let v = p >>> 7; v > 0; v >>>= 7) bytes.unshift((v & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}
function dn(cn: string): Buffer { return seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8'))))); }
function utcTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return tlv(0x17, Buffer.from(s, 'ascii'));
}
function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), tlv(0x04, value));
}
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand :: and write 8 groups
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => { const v = parseInt(g, 16); return [v >> 8, v & 0xff]; }));
}
