import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { userInfo } from 'node:os';
import { isFurError } from '../../src/errors.js';
import { maskPassword, parseDestinationUrl } from '../../src/transport/url.js';

describe('destination URLs', () => {
  it('parses sftp with user, port and absolute path', () => {
    assert.deepEqual(parseDestinationUrl('sftp://alice@beamline.example.org:2222/data/run%201'), {
      scheme: 'sftp', user: 'alice', host: 'beamline.example.org', port: 2222, path: '/data/run 1',
      display: 'sftp://alice@beamline.example.org:2222/data/run%201',
    });
  });

  it('defaults the port to 22 and the path to /; ~ means the login directory', () => {
    const a = parseDestinationUrl('sftp://bob@host');
    assert.equal(a.scheme === 'sftp' && a.port, 22);
    assert.equal(a.scheme === 'sftp' && a.path, '/');
    assert.equal(a.display, 'sftp://bob@host/');
    const b = parseDestinationUrl('sftp://bob@host/~/frames');
    assert.equal(b.scheme === 'sftp' && b.path, 'frames');
    const c = parseDestinationUrl('sftp://bob@host/~');
    assert.equal(c.scheme === 'sftp' && c.path, '.');
  });

  it('takes the local user name when the URL has none, like ssh', () => {
    const u = parseDestinationUrl('sftp://host/x');
    assert.equal(u.scheme === 'sftp' && u.user, userInfo().username);
  });

  it('parses bracketed IPv6 hosts', () => {
    const u = parseDestinationUrl('sftp://u@[::1]:2200/x');
    assert.equal(u.scheme === 'sftp' && u.host, '::1');
    assert.equal(u.display, 'sftp://u@[::1]:2200/x');
  });

  it('parses file URLs and plain paths as file destinations', () => {
    assert.deepEqual(parseDestinationUrl('file:///mnt/share/run'), { scheme: 'file', path: '/mnt/share/run', display: '/mnt/share/run' });
    assert.deepEqual(parseDestinationUrl('/srv/data'), { scheme: 'file', path: '/srv/data', display: '/srv/data' });
    assert.equal((parseDestinationUrl('out/run1') as { path: string }).path, resolve('out/run1'));
  });

  it('reserves ftps and s3', () => {
    assert.deepEqual(parseDestinationUrl('ftps://carol@ftp.example.org/in'), {
      scheme: 'ftps', user: 'carol', host: 'ftp.example.org', port: 21, path: '/in', display: 'ftps://carol@ftp.example.org/in',
    });
    assert.deepEqual(parseDestinationUrl('s3://my-bucket/runs/2024?region=eu-west-1'), {
      scheme: 's3', bucket: 'my-bucket', prefix: 'runs/2024', params: { region: 'eu-west-1' }, display: 's3://my-bucket/runs/2024',
    });
  });

  const bad: Array<[string, RegExp]> = [
    ['', /it is empty/],
    ['sftp://alice:secret@host/x', /contains a password.*--password-env/],
    ['sftp://alice@host:99999/x', /not a valid URL/],
    ['sftp:///x', /host is missing/],
    ['http://host/x', /scheme 'http:' is not supported/],
    ['file://server/share', /not host 'server'/],
    ['s3://Bad_Bucket/x', /not a valid bucket name/],
    ['sftp://alice@host/a%zz', /broken %-escape/],
    ['sftp://alice@host/x?y=1', /query strings/],
  ];
  for (const [text, why] of bad) {
    it(`rejects '${text}' as bad-url`, () => {
      assert.throws(() => parseDestinationUrl(text), (e) => {
        assert.ok(isFurError(e, 'bad-url'), String(e));
        assert.ok(e.message.startsWith(`destination URL '${maskPassword(text)}' does not parse: `), e.message);
        assert.match(e.message, why);
        assert.ok(e.message.endsWith('expected sftp://user@host[:port]/path or file:///path'));
        assert.ok(!e.message.includes('secret'), 'a password is never repeated');
        return true;
      });
    });
  }

  it('never repeats a password from the URL, in its message or its fields', () => {
    assert.throws(() => parseDestinationUrl('sftp://a:hunter2@h/x'), (e) => isFurError(e, 'bad-url') && e.fields.url === 'sftp://a:***@h/x' && !e.message.includes('hunter2'));
  });
});
