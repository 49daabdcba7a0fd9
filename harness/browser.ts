/**
 * Debian's chromium (installed by .ci/run), driven by playwright-core: headless, sandboxed from
 * the network's extras (no background fetches, no updates, no sync), a fresh profile each time.
 * Never a downloaded browser.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  // the fresh profile (--user-data-dir): playwright takes it as the persistent context's folder
  const profile = await mkdtemp(join(tmpdir(), 'fur-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  return { context, close: async () => { await context.close().catch(() => undefined); await rm(profile, { recursive: true, force: true }); } };
}

/** where a test leaves what a person should look at (screenshots): test-output/<name>, or $FUR_TEST_OUTPUT/<name> */
export function testOutput(name: string): string {
  return join(process.env.FUR_TEST_OUTPUT ?? join(process.cwd(), 'test-output'), name);
}
