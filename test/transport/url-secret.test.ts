import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFurError } from '../../src/errors.js';
import { maskPassword, parseDestinationUrl } from '../../src/transport/url.js';

test('a password written into a URL is refused and never repeated in the message or fields', () => {
  for (const url of ['sftp://lab:s3cret@127.0.0.1/x.h5', 'ftps://lab:s3cret@host:2121/d', 'sftp://lab:s3cret@[::1]:22/a']) {
    assert.throws(() => parseDestinationUrl(url), (e: unknown) => {
      assert.ok(isFurError(e, 'bad-url'));
      assert.ok(!e.message.includes('s3cret'), e.message);
      assert.ok(!JSON.stringify(e.fields).includes('s3cret'));
      assert.match(e.message, /contains a password/);
      assert.match(e.message, /lab:\*\*\*@/);
      return true;
    });
  }
  assert.equal(maskPassword('sftp://u@h/p'), 'sftp://u@h/p');
});
