// Drives the batchfan serve status page in Debian's headless Chromium:
// opens the home page without the login (refused), logs in through the URL
// serve printed, presses Run, and waits on the run's page (without reloading
// it) until the run is SUCCEEDED with every cell of its grids in the
// succeeded state. Saves a screenshot. Then frames the status page from a page
// of the same origin (the worst case: the cookie goes along) and records that
// the browser refused to display it. Prints a JSON summary on stdout.
//
//   node status-page.mjs URL LOGIN_URL PIPELINE SCREENSHOT.png
//
// Run by tests/serve_browser.rs; Chromium comes from scripts/setup/30-chromium.sh.
import { launch } from './launch.mjs';

const [url, loginUrl, pipeline, screenshot] = process.argv.slice(2);
if (!url || !loginUrl || !pipeline || !screenshot) {
  console.error('usage: node status-page.mjs URL LOGIN_URL PIPELINE SCREENSHOT.png');
  process.exit(2);
}
const { context, close } = await launch({ width: 1100, height: 760 });
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const denied = await page.goto(url);
  const deniedStatus = denied.status();
  const deniedRunButtons = await page.locator('button[data-pipeline]').count();
  await page.goto(loginUrl);
  const landed = page.url();
  const cookie = (await context.cookies(url)).find((c) => c.name.startsWith('batchfan-'));
  await page.click(`button[data-pipeline="${pipeline}"]`);
  await page.waitForURL(/\/runs\/r[0-9a-f]+$/, { timeout: 30_000 });
  const runId = page.url().split('/').pop();
  // A mark on this document: if it is still there at the end, the page updated itself.
  await page.evaluate(() => { window.__batchfanMark = true; });
  const firstState = await page.textContent('#run-state');
  const seen = new Set([firstState]);
  const deadline = Date.now() + 120_000;
  let done = false;
  while (Date.now() < deadline) {
    const state = await page.textContent('#run-state');
    seen.add(state);
    done = await page.evaluate(() => {
      const cells = [...document.querySelectorAll('.grid i')];
      return document.querySelector('#run-state')?.textContent === 'SUCCEEDED'
        && cells.length > 0 && cells.every((c) => c.classList.contains('s-SUCCEEDED'));
    });
    if (done) break;
    await page.waitForTimeout(200);
  }
  if (!done) throw new Error(`run ${runId} did not show SUCCEEDED with a full grid; states seen: ${[...seen]}`);
  const sameDocument = await page.evaluate(() => window.__batchfanMark === true);
  const grids = await page.evaluate(() => [...document.querySelectorAll('.stage')].map((s) => ({
    stage: s.dataset.stage,
    cells: s.querySelectorAll('.grid i').length,
    succeeded: s.querySelectorAll('.grid i.s-SUCCEEDED').length,
    colour: s.querySelector('.grid i') ? getComputedStyle(s.querySelector('.grid i')).backgroundColor : null,
  })));
  await page.screenshot({ path: screenshot, fullPage: true });
  // The home page lists the run as SUCCEEDED too.
  await page.goto(url);
  const row = page.locator(`tr[data-run="${runId}"] .state`);
  const listed = await row.textContent();
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-home.png'), fullPage: true });
  // Clickjacking: a page of the same origin (served here by the browser itself) frames the status page.
  await context.route(`${url}/framer`, (route) => route.fulfill({
    status: 200,
    contentType: 'text/html',
    body: `<!doctype html><iframe id=f src="${url}/" width=900 height=500></iframe>`,
  }));
  const refusal = page.waitForEvent('console', {
    predicate: (m) => /frame-ancestors|X-Frame-Options/i.test(m.text()),
    timeout: 30_000,
  });
  await page.goto(`${url}/framer`);
  const frameRefusal = (await refusal).text();
  const framedRunButtons = await page.evaluate(
    () => document.getElementById('f').contentDocument?.querySelectorAll('button[data-pipeline]').length ?? 0,
  );
  console.log(JSON.stringify({
    deniedStatus, deniedRunButtons, landed,
    cookie: cookie && { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path },
    runId, firstState, states: [...seen], sameDocument, grids, listed, frameRefusal, framedRunButtons,
  }));
} finally {
  await close();
}
