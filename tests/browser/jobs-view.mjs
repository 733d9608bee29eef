// Drives the Jobs view of `batchfan serve --batch-api` in Debian's headless
// Chromium: refused without the login, logs in through the URL serve
// printed, opens Jobs from the navigation, reads each job's status and array
// progress, releases a running job (by creating RELEASE_FILE, which it waits
// for) and watches its row turn SUCCEEDED without a reload, filters on
// FAILED, opens the array job, then its failed child, and reads the attempt's
// exit code and log tail. Saves a screenshot of the child's page (and of the
// list). Prints a JSON summary on stdout.
//
//   node jobs-view.mjs URL LOGIN_URL ARRAY_JOB_ID FAILED_INDEX RUNNING_JOB_ID RELEASE_FILE SCREENSHOT.png
//
// Run by tests/serve_browser.rs; Chromium comes from scripts/setup/30-chromium.sh.
import { writeFileSync } from 'node:fs';
import { launch } from './launch.mjs';

const [url, loginUrl, arrayJob, failedIndex, runningJob, releaseFile, screenshot] = process.argv.slice(2);
if (!url || !loginUrl || !arrayJob || !failedIndex || !runningJob || !releaseFile || !screenshot) {
  console.error('usage: node jobs-view.mjs URL LOGIN_URL ARRAY_JOB_ID FAILED_INDEX RUNNING_JOB_ID RELEASE_FILE SCREENSHOT.png');
  process.exit(2);
}
const { context, close } = await launch({ width: 1200, height: 800 });
const rows = (selector) => [...document.querySelectorAll(selector)].map((tr) => ({
  id: tr.dataset.job,
  name: tr.querySelector('a')?.textContent ?? null,
  status: tr.querySelector('.state')?.textContent ?? null,
  progress: tr.querySelector('.progress')?.textContent ?? null,
  bar: [...tr.querySelectorAll('.bar i')].map((i) => i.className),
}));
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const cspErrors = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  const denied = await page.goto(`${url}/jobs`);
  const deniedStatus = denied.status();
  const deniedRows = await page.locator('tr[data-job]').count();
  await page.goto(loginUrl);
  await page.click('#nav-jobs');
  await page.waitForURL(`${url}/jobs`);
  await page.waitForSelector('#jobs tr[data-job]');
  const listed = await page.evaluate(rows, '#jobs tr[data-job]');
  const failedColour = await page.evaluate(
    () => { const i = document.querySelector('.bar i.s-FAILED'); return i && getComputedStyle(i).backgroundColor; },
  );
  // Live: release the running job and watch its row change without a reload.
  await page.evaluate(() => { window.__batchfanMark = true; });
  writeFileSync(releaseFile, 'go');
  await page.waitForFunction(
    (id) => document.querySelector(`#jobs tr[data-job="${id}"] .state`)?.textContent === 'SUCCEEDED',
    runningJob,
    { timeout: 60_000, polling: 200 },
  );
  const liveUpdate = await page.evaluate(() => window.__batchfanMark === true);
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-list.png'), fullPage: true });

  await page.selectOption('select[name=status]', 'FAILED');
  await page.click('form.filter button');
  await page.waitForURL(/\/jobs\?.*status=FAILED/);
  const filtered = await page.evaluate(rows, '#jobs tr[data-job]');

  await page.click(`#jobs tr[data-job="${arrayJob}"] a`);
  await page.waitForURL(`${url}/jobs/${arrayJob}`);
  const parentStatus = await page.textContent('#job-status');
  const children = await page.evaluate(rows, '#children tr[data-job]');

  const child = `${arrayJob}:${failedIndex}`;
  await page.click(`#children tr[data-job="${child}"] a`);
  await page.waitForURL(`${url}/jobs/${child}`);
  const childPage = await page.evaluate(() => ({
    status: document.querySelector('#job-status')?.textContent,
    exitCodes: [...document.querySelectorAll('#attempts tr[data-attempt] .exit-code')].map((c) => c.textContent),
    log: document.querySelector('pre.log')?.textContent ?? null,
    parent: document.querySelector('#parent')?.getAttribute('href') ?? null,
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({
    deniedStatus, deniedRows, listed, failedColour, liveUpdate, filtered, parentStatus, children, childPage, cspErrors,
  }));
} finally {
  await close();
}
