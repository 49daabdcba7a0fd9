import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  entryMatches, formatKnownHostsLine, hostName, judgeHostKey, keyTypeOf, knownKeyTypes, parseKnownHosts,
} from '../../src/transport/known-hosts.js';

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
}
const ED_A = blob('ssh-ed25519', 'key-a');
const ED_B = blob('ssh-ed25519', 'key-b');
const RSA = blob('ssh-rsa', 'key-r');
const b64 = (k: Buffer) => k.toString('base64');

describe('known_hosts', () => {
  it('files hosts the way OpenSSH does', () => {
    assert.equal(hostName('Example.org', 22), 'example.org');
    assert.equal(hostName('10.0.0.1', 2222), '[10.0.0.1]:2222');
    assert.equal(keyTypeOf(RSA), 'ssh-rsa');
    assert.equal(formatKnownHostsLine('h', 2200, ED_A), `[h]:2200 ssh-ed25519 ${b64(ED_A)}`);
  });

  it('parses comments, markers and short lines', () => {
    const entries = parseKnownHosts([
      '# comment',
      '',
      `alpha,beta ssh-ed25519 ${b64(ED_A)} user@box`,
      `@revoked gamma ssh-ed25519 ${b64(ED_B)}`,
      `@cert-authority *.lab ssh-ed25519 ${b64(ED_B)}`,
      '@unknown-marker x ssh-ed25519 AAAA',
      'broken-line ssh-ed25519',
    ].join('\n'));
    assert.deepEqual(entries.map((e) => [e.line, e.marker, e.hosts, e.keyType]), [
      [3, undefined, 'alpha,beta', 'ssh-ed25519'],
      [4, 'revoked', 'gamma', 'ssh-ed25519'],
      [5, 'cert-authority', '*.lab', 'ssh-ed25519'],
    ]);
    assert.ok(entries[0].key.equals(ED_A));
  });

  it('matches names, wildcards, negations, [host]:port and hashed entries', () => {
    assert.equal(entryMatches('alpha,beta', 'beta'), true);
    assert.equal(entryMatches('alpha,beta', 'gamma'), false);
    assert.equal(entryMatches('*.lab,!bad.lab', 'good.lab'), true);
    assert.equal(entryMatches('*.lab,!bad.lab', 'bad.lab'), false);
    assert.equal(entryMatches('node?', 'node7'), true);
    assert.equal(entryMatches('[h]:2222', '[h]:2222'), true);
    assert.equal(entryMatches('h', '[h]:2222'), false, 'a port-22 entry does not cover other ports');
    assert.equal(entryMatches('a.b', 'aXb'), false, 'dots are literal');
    const salt = Buffer.from('0123456789abcdefghij');
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[h]:2222').digest('base64')}`;
    assert.equal(entryMatches(hashed, '[h]:2222'), true);
    assert.equal(entryMatches(hashed, '[h]:2223'), false);
  });

  it('judges keys: known, changed (same type, other key), unknown (other types only), revoked', () => {
    const entries = parseKnownHosts([
      `h ssh-rsa ${b64(RSA)}`,
      `h ssh-ed25519 ${b64(ED_A)}`,
      `@revoked h ssh-ed25519 ${b64(ED_B)}`,
      `[h]:2222 ssh-rsa ${b64(RSA)}`,
    ].join('\n'));
    assert.deepEqual(judgeHostKey(entries, 'h', 22, ED_A), { status: 'known', line: 2 });
    assert.deepEqual(judgeHostKey(entries, 'h', 22, ED_B), { status: 'revoked', line: 3 });
    assert.deepEqual(judgeHostKey(entries, 'h', 2222, ED_A), { status: 'unknown', knownTypes: ['ssh-rsa'] });
    assert.deepEqual(judgeHostKey(entries, 'other', 22, ED_A), { status: 'unknown', knownTypes: [] });
    const changed = parseKnownHosts(`h ssh-ed25519 ${b64(ED_B)}`);
    assert.deepEqual(judgeHostKey(changed, 'h', 22, ED_A), { status: 'changed', line: 1, keyType: 'ssh-ed25519' });
    assert.deepEqual(knownKeyTypes(entries, 'h', 22), ['ssh-rsa', 'ssh-ed25519']);
  });
});
