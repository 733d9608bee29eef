// Drives the run pages of batchfan serve in Debian's headless Chromium (issue
// 14 item 5), after the test made two finished runs of one pipeline (one
// SUCCEEDED, one FAILED with many failed children): the history grid, a run's
// timings and timeline, the failed children past the first five (paged), a
// child's page with its attempts, log tail and whole log, a click on a grid
// cell, and the live refresh — paused in a hidden tab, backing off with a
// visible error when the fragment fails. Screenshots: SHOTS_DIR/*.png. Prints
// a JSON summary on stdout.
//
//   node run-pages.mjs URL LOGIN_URL OK_RUN FAILED_RUN SHOTS_DIR
//
// Run by tests/serve_browser.rs; Chromium comes from scripts/setup/30-chromium.sh.
import { join } from 'node:path';
import { launch } from './launch.mjs';

const [url, loginUrl, okRun, failedRun, shots] = process.argv.slice(2);
if (!url || !loginUrl || !okRun || !failedRun || !shots) {
  console.error('usage: node run-pages.mjs URL LOGIN_URL OK_RUN FAILED_RUN SHOTS_DIR');
  process.exit(2);
}
const { context, close } = await launch({ width: 1200, height: 800 });
const shot = (page, name) => page.screenshot({ path: join(shots, name), fullPage: true });
const cspViolations = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text()); });
  await page.goto(loginUrl);

  // The history grid, from the navigation.
  await page.click('#nav-history');
  await page.waitForURL(`${url}/history`);
  const history = await page.evaluate(() => {
    const t = document.querySelector('table.history[data-pipeline="pages"]');
    const rows = [...t.querySelectorAll('tr')].slice(1);
    return {
      runs: [...t.querySelectorAll('tr:first-child a')].map((a) => a.getAttribute('href').split('/').pop()),
      rows: rows.map((r) => ({
        stage: r.querySelector('th').textContent,
        cells: [...r.querySelectorAll('a.h')].map((a) => a.className.replace('h s-', '')),
      })),
    };
  });
  await shot(page, 'history.png');

  // The succeeded run: timings and timeline.
  await page.goto(`${url}/runs/${okRun}`);
  const ok = await page.evaluate(() => ({
    state: document.querySelector('#run-state').textContent,
    actionsSlot: document.querySelectorAll('.run-actions[data-run]').length,
    timings: [...document.querySelectorAll('#timings tr[data-stage]')].map((r) => ({
      stage: r.dataset.stage,
      duration: r.querySelector('.duration').textContent,
      slowestLinks: r.querySelectorAll('a').length,
    })),
    bars: [...document.querySelectorAll('#timeline rect')].map((r) => r.getAttribute('class')),
    barWidths: [...document.querySelectorAll('#timeline rect')].map((r) => r.getBoundingClientRect().width),
  }));
  await shot(page, 'run-timeline.png');

  // The failed run: five failed children here, the rest on paged pages.
  await page.goto(`${url}/runs/${failedRun}`);
  const failed = await page.evaluate(() => ({
    state: document.querySelector('#run-state').textContent,
    shown: document.querySelectorAll('.failed-child').length,
    heading: [...document.querySelectorAll('h2')].map((h) => h.textContent).find((t) => t.startsWith('Failed children')),
    allLink: document.querySelector('#all-failed')?.textContent,
  }));
  await shot(page, 'run-failed.png');
  await page.click('#all-failed');
  const pages = [];
  for (;;) {
    await page.waitForSelector('#failed-page');
    pages.push(await page.evaluate(() => ({
      label: document.querySelector('#failed-page').textContent,
      children: [...document.querySelectorAll('.failed-child b')].map((b) => b.textContent),
      tails: [...document.querySelectorAll('.failed-child pre')].filter((p) => /log line 80 of child/.test(p.textContent)).length,
    })));
    if (pages.length === 1) await shot(page, 'run-failed-children.png');
    if (!(await page.locator('#next').count())) break;
    await page.click('#next');
  }

  // A click on a cell of the grid opens that child's page.
  await page.goto(`${url}/runs/${failedRun}`);
  await page.click('.stage[data-stage="work"] .grid i:nth-child(2)');
  await page.waitForURL(/\/children\/work\/1$/);
  const child = await page.evaluate(() => ({
    url: location.pathname,
    state: document.querySelector('#child-state').textContent,
    attempts: [...document.querySelectorAll('.attempt h3')].map((h) => h.textContent),
    tailHasLast: /log line 80 of child 1\b/.test(document.querySelector('pre.tail')?.textContent ?? ''),
    tailHasFirst: /log line 1 of child 1\b/.test(document.querySelector('pre.tail')?.textContent ?? ''),
  }));
  await page.click('a.full-log');
  await page.waitForSelector('#full-log');
  const fullLog = await page.evaluate(() => {
    const t = document.querySelector('#full-log').textContent;
    return { first: /log line 1 of child 1\b/.test(t), last: /log line 80 of child 1\b/.test(t), lines: t.trim().split('\n').length };
  });
  await shot(page, 'child.png');

  // Live refresh on the home page (every 2 s): paused while hidden ...
  await page.goto(url);
  let fetched = 0;
  page.on('request', (r) => { if (r.url().endsWith('/fragments/home')) fetched += 1; });
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  const pausedText = await page.textContent('#live-status');
  fetched = 0;
  await page.waitForTimeout(5_000);
  const fetchedWhileHidden = fetched;
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await page.waitForFunction(() => document.querySelector('#live').dataset.live === 'ok');
  await page.waitForRequest((r) => r.url().endsWith('/fragments/home'), { timeout: 5_000 });
  // ... and backing off with a visible error when the fragment cannot be read.
  await page.route('**/fragments/home', (r) => r.fulfill({ status: 503, contentType: 'text/plain', body: 'cannot read the run records' }));
  const errors = [];
  for (const wait of ['4 s', '8 s']) {
    const h = await page.waitForFunction(
      (w) => (document.querySelector('#live-status').textContent.endsWith(`retrying in ${w}`) ? document.querySelector('#live-status').textContent : null),
      wait, { timeout: 30_000 },
    );
    errors.push(await h.jsonValue());
  }
  const statusClass = await page.getAttribute('#live-status', 'class');
  const runsStillShown = await page.locator(`tr[data-run="${okRun}"]`).count();
  await shot(page, 'home-refresh-error.png');
  await page.unroute('**/fragments/home');
  await page.waitForFunction(() => document.querySelector('#live').dataset.live === 'ok', null, { timeout: 30_000 });
  const recovered = await page.textContent('#live-status');

  console.log(JSON.stringify({
    history, ok, failed, pages, child, fullLog,
    pausedText, fetchedWhileHidden, errors, statusClass, runsStillShown, recovered, cspViolations,
  }));
} finally {
  await close();
}
