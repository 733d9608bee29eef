// Drives the read-only pages of `batchfan serve --backend aws` in Debian's
// headless Chromium, after the test made two runs of one pipeline on AWS
// (moto + batch-api): one FAILED (child 1 exits 3), one SUCCEEDED. Refused
// without the login; then the home page (runs and states, the read-only note
// instead of Run buttons), the history grid, the failed run's page (grid,
// failed child, the note instead of Retry) and a click on the failed cell:
// the child's page with its attempt, exit code, reasons and log lines from
// CloudWatch Logs, and its whole log. Screenshots: SHOTS_DIR/deployed-*.png.
// Prints a JSON summary on stdout.
//
//   node deployed-pages.mjs URL LOGIN_URL FAILED_RUN OK_RUN SHOTS_DIR
//
// Run by tests/serve_aws.rs; Chromium comes from scripts/setup/30-chromium.sh.
import { join } from 'node:path';
import { args, firstPage, launch } from './launch.mjs';

const [url, loginUrl, failedRun, okRun, shots] =
  args('node deployed-pages.mjs URL LOGIN_URL FAILED_RUN OK_RUN SHOTS_DIR', 5);
const { context, close } = await launch({ width: 1200, height: 800 });
const cspViolations = [];
try {
  const page = await firstPage(context, cspViolations);
  const shot = (name) => page.screenshot({ path: join(shots, name), fullPage: true });
  const denied = await page.goto(url);
  const deniedStatus = denied.status();
  await page.goto(loginUrl);
  const landed = page.url();

  // Home: the runs with their states, the note where the Run buttons are.
  const home = await page.evaluate(() => ({
    runs: [...document.querySelectorAll('#runs tr[data-run]')].map((r) => ({
      run: r.dataset.run, state: r.querySelector('.state').textContent,
    })),
    runButtons: document.querySelectorAll('form.run, button[data-pipeline]').length,
    note: document.querySelector('#read-only')?.textContent,
    alertsNote: document.querySelector('#alerts-elsewhere')?.textContent,
    storeError: document.querySelector('#store-error')?.textContent ?? null,
  }));
  await shot('deployed-home.png');

  // The history grid, from the navigation.
  await page.click('#nav-history');
  await page.waitForURL(`${url}/history`);
  const history = await page.evaluate(() => {
    const t = document.querySelector('table.history');
    return {
      pipeline: t?.dataset.pipeline,
      runs: [...t.querySelectorAll('tr:first-child a')].map((a) => a.getAttribute('href').split('/').pop()),
      rows: [...t.querySelectorAll('tr')].slice(1).map((r) => ({
        stage: r.querySelector('th').textContent,
        cells: [...r.querySelectorAll('a.h')].map((a) => a.className.replace('h s-', '')),
      })),
    };
  });
  await shot('deployed-history.png');

  // The failed run: its grid, its failed child, the Retry button.
  await page.goto(`${url}/runs/${failedRun}`);
  const run = await page.evaluate(() => ({
    state: document.querySelector('#run-state').textContent,
    cells: [...document.querySelectorAll('.stage[data-stage="work"] .grid i')].map((i) => i.className.replace('s-', '')),
    finish: [...document.querySelectorAll('.stage')].map((s) => s.dataset.stage),
    actionNote: document.querySelector('#read-only-actions')?.textContent,
    buttons: document.querySelectorAll('.run-action button, #retry-button, #cancel-button').length,
    failed: [...document.querySelectorAll('.failed-child')].map((f) => f.textContent),
    timings: [...document.querySelectorAll('#timings tr[data-stage]')].map((r) => r.dataset.stage),
  }));
  await shot('deployed-run.png');

  // A click on the failed cell opens the child's page.
  await page.click('.stage[data-stage="work"] .grid i:nth-child(2)');
  await page.waitForURL(/\/children\/work\/1$/);
  const child = await page.evaluate(() => ({
    state: document.querySelector('#child-state').textContent,
    attempts: [...document.querySelectorAll('.attempt h3')].map((h) => h.textContent),
    why: [...document.querySelectorAll('.attempt p')].map((p) => p.textContent),
    tail: document.querySelector('pre.tail')?.textContent ?? '',
  }));
  await page.click('a.full-log');
  await page.waitForSelector('#full-log, #log-note');
  const fullLog = await page.evaluate(() => ({
    text: document.querySelector('#full-log')?.textContent ?? null,
    note: document.querySelector('#log-note')?.textContent ?? null,
  }));
  await shot('deployed-child.png');

  // The succeeded run.
  await page.goto(`${url}/runs/${okRun}`);
  const ok = await page.evaluate(() => ({
    state: document.querySelector('#run-state').textContent,
    cells: [...document.querySelectorAll('.stage[data-stage="work"] .grid i')].map((i) => i.className.replace('s-', '')),
    actionNote: document.querySelector('#read-only-actions')?.textContent ?? null,
  }));

  // Retry what failed, with the button (the fault is gone by now): the page
  // follows the run — this serve reconciles it — until it SUCCEEDS.
  await page.goto(`${url}/runs/${failedRun}`);
  await page.click('#retry-button');
  await page.waitForURL(new RegExp(`/runs/${failedRun}$`));
  const deadline = Date.now() + 240000;
  let retried;
  for (;;) {
    retried = await page.evaluate(() => ({
      state: document.querySelector('#run-state').textContent,
      cells: [...document.querySelectorAll('.stage[data-stage="work"] .grid i')].map((i) => i.className.replace('s-', '')),
      attempts: document.querySelector('p.attempts')?.textContent ?? null,
      buttons: document.querySelectorAll('#retry-button, #cancel-button').length,
    }));
    if (retried.state === 'SUCCEEDED' || retried.state === 'FAILED' || Date.now() > deadline) break;
    await page.waitForTimeout(1000);
    await page.reload();
  }
  await shot('deployed-retried.png');

  console.log(JSON.stringify({ deniedStatus, landed, home, history, run, child, fullLog, ok, retried, cspViolations }));
} finally {
  await close();
}
