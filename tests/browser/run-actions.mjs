// Drives a run's Cancel and Retry buttons in Debian's headless Chromium:
// logs in through the URL serve printed, opens the page of a running run,
// presses Cancel and waits (no reload) until the page says CANCELLED; then
// (the test has removed the cause) presses Retry what failed and waits until
// SUCCEEDED. Then reads the attempt selector and the work stage's counts of
// the current attempt, and follows the link to attempt 1 (as it ran).
// Saves a screenshot of each end and of attempt 1. Prints a JSON summary on stdout.
//
//   node run-actions.mjs URL LOGIN_URL RUN_ID CANCELLED.png SUCCEEDED.png FLAG_FILE [ATTEMPT1.png]
//
// FLAG_FILE is created once the cancelled run's page was seen: the test then
// removes the cause of the slowness before Retry is pressed.
// Run by tests/run_ops_browser.rs; Chromium comes from scripts/setup/30-chromium.sh.
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, loginUrl, runId, cancelledShot, succeededShot, flag, attemptOneShot] = process.argv.slice(2);
if (!url || !loginUrl || !runId || !cancelledShot || !succeededShot || !flag) {
  console.error('usage: node run-actions.mjs URL LOGIN_URL RUN_ID CANCELLED.png SUCCEEDED.png FLAG_FILE');
  process.exit(2);
}
const executablePath = process.env.BATCHFAN_CHROMIUM || '/usr/bin/chromium';
const userDataDir = mkdtempSync(join(tmpdir(), 'batchfan-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1100, height: 760 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const violations = [];
async function waitState(page, want) {
  const seen = [];
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const state = await page.textContent('#run-state').catch(() => null);
    if (seen[seen.length - 1] !== state) seen.push(state);
    if (state === want) return seen;
    await page.waitForTimeout(200);
  }
  throw new Error(`run never became ${want}: saw ${seen.join(' → ')}`);
}
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (/Content Security Policy/.test(m.text())) violations.push(m.text()); });
  await page.goto(loginUrl);
  await page.goto(`${url}/runs/${runId}`);
  const before = await page.textContent('#run-state');
  const retryBefore = await page.locator('#retry-button').count();
  await page.click('#cancel-button');
  await page.waitForURL(`${url}/runs/${runId}`);
  await page.evaluate(() => { window.__batchfanMark = true; });
  const towardCancelled = await waitState(page, 'CANCELLED');
  const sameDocument = await page.evaluate(() => window.__batchfanMark === true);
  await page.screenshot({ path: cancelledShot, fullPage: true });
  const cancelButtonsAfter = await page.locator('#cancel-button').count();
  writeFileSync(flag, 'cancelled\n');
  while (existsSync(flag)) await page.waitForTimeout(100);
  await page.click('#retry-button');
  await page.waitForURL(`${url}/runs/${runId}`);
  const towardSucceeded = await waitState(page, 'SUCCEEDED');
  const buttonsAtEnd = await page.locator('.run-action button').count();
  await page.screenshot({ path: succeededShot, fullPage: true });
  const counts = () => page.textContent('.stage[data-stage="work"] .counts');
  const attemptsText = (await page.textContent('.attempts'))?.trim();
  const currentCounts = await counts();
  await page.click('a.attempt >> text=1');
  await page.waitForURL(`${url}/runs/${runId}?attempt=1`);
  const firstCounts = await counts();
  const firstShown = await page.textContent('.attempt-shown');
  await page.waitForTimeout(1500); // two refreshes of the live part: it stays on attempt 1
  const firstCountsLater = await counts();
  if (attemptOneShot) await page.screenshot({ path: attemptOneShot, fullPage: true });
  console.log(JSON.stringify({
    before, retryBefore, towardCancelled, sameDocument, cancelButtonsAfter, towardSucceeded, buttonsAtEnd, violations,
    attemptsText, currentCounts, firstCounts, firstShown, firstCountsLater,
  }));
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
