// Starts Debian's headless Chromium for the browser tests (BATCHFAN_CHROMIUM,
// default /usr/bin/chromium) in a fresh profile; `close()` stops it and
// removes the profile. Shared by every script of tests/browser/, with
// `args` (a script's arguments) and `firstPage` (its page, CSP violations kept).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export async function launch(viewport) {
  const executablePath = process.env.BATCHFAN_CHROMIUM || '/usr/bin/chromium';
  const userDataDir = mkdtempSync(join(tmpdir(), 'batchfan-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const close = async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}

// The script's first `count` arguments, or its usage on stderr and exit 2.
export function args(usage, count) {
  const given = process.argv.slice(2);
  if (given.length < count || given.slice(0, count).some((a) => !a)) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return given;
}

// The context's first page; each Content-Security-Policy violation the console reports goes to `violations`.
export async function firstPage(context, violations) {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) violations.push(m.text()); });
  return page;
}
