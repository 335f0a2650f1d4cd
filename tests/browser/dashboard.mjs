// Checks the dashboard in headless Chromium against a running Weir server:
//
//   node tests/browser/dashboard.mjs URL SCREENSHOT_PATH STAGES
//
// STAGES is a comma-separated list of every component the graph must show; the first is the
// one tailed. Passes when every component is drawn, every chart took live data at least twice,
// the tail showed events and the page logged no error or warning. Prints a one-line JSON
// summary on success; on failure names what failed on stderr and exits 1. Needs Debian's
// chromium and this folder's node packages (scripts/install-browser.sh).
import { chromium } from 'playwright-core';

/** The whole check, browser start included, must end within this. */
const OVERALL_TIMEOUT_MS = 60_000;
/** For each wait on live data: the page polls every second, so 10 s is many polls. */
const LIVE_TIMEOUT_MS = 10_000;
/** A chart must have been updated this many more times: one update could be the first poll. */
const CHART_UPDATES_WANTED = 2;
const TAIL_ROWS_WANTED = 3;

// The machine has no outside network: these flags stop Chromium's own calls home.
const LAUNCH_OPTIONS = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

class CheckFailed extends Error {}

/** Runs `promise`, turning a timeout into a message that says what was awaited. */
async function step(what, promise) {
  try {
    return await promise;
  } catch (error) {
    throw new CheckFailed(`${what}: ${error.message.split('\n')[0]}`);
  }
}

/** A CSS string literal (for attribute selectors) holding `text`. */
function cssString(text) {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

/** The checks; the page's console errors and warnings go to `problems` as they happen. */
async function checkDashboard(browser, url, screenshotPath, stages, problems) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      problems.push(`console ${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));

  await step(`open ${url}`, page.goto(url, { waitUntil: 'load' }));

  for (const name of stages) {
    await step(`graph node "${name}"`, page.locator(`#graph .node[data-name=${cssString(name)}]`).waitFor({ timeout: LIVE_TIMEOUT_MS }));
  }

  const before = await page.$$eval('.chart', (charts) => charts.map((c) => Number(c.dataset.updates)));
  if (before.length === 0) {
    throw new CheckFailed('no .chart elements on the page');
  }
  await step(
    `every chart updated ${CHART_UPDATES_WANTED} more times (updates before: ${before.join(', ')})`,
    page.waitForFunction(
      ({ before, wanted }) => {
        const now = [...document.querySelectorAll('.chart')].map((c) => Number(c.dataset.updates));
        return now.length === before.length && now.every((n, i) => n >= before[i] + wanted);
      },
      { before, wanted: CHART_UPDATES_WANTED },
      { timeout: LIVE_TIMEOUT_MS },
    ),
  );

  const tailed = stages[0];
  await step(`choose "${tailed}" in #tail-stage`, page.selectOption('#tail-stage', tailed, { timeout: LIVE_TIMEOUT_MS }));
  await page.click('#tail-toggle');
  await step(
    `${TAIL_ROWS_WANTED} rows in the tail of "${tailed}"`,
    page.waitForFunction((wanted) => document.querySelectorAll('#tail .tail-row').length >= wanted, TAIL_ROWS_WANTED, { timeout: LIVE_TIMEOUT_MS }),
  );

  await page.screenshot({ path: screenshotPath, fullPage: true });
  const summary = {
    charts: await page.$$eval('.chart', (charts) => charts.map((c) => ({ chart: c.dataset.chart, updates: Number(c.dataset.updates) }))),
    rows: await page.locator('#tail .tail-row').count(),
    stages: await page.$$eval('#graph .node', (nodes) => nodes.map((n) => n.dataset.name)),
  };
  if (problems.length) {
    throw new CheckFailed('the page logged errors or warnings');
  }
  return summary;
}

async function main() {
  const [url, screenshotPath, stageList] = process.argv.slice(2);
  const stages = (stageList ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (!url || !screenshotPath || stages.length === 0) {
    console.error('usage: node tests/browser/dashboard.mjs URL SCREENSHOT_PATH STAGE[,STAGE...]');
    return 2;
  }
  const problems = [];
  let browser;
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`not done within ${OVERALL_TIMEOUT_MS / 1000} s`)), OVERALL_TIMEOUT_MS);
  });
  try {
    const run = (async () => {
      browser = await chromium.launch(LAUNCH_OPTIONS);
      return checkDashboard(browser, url, screenshotPath, stages, problems);
    })();
    run.catch(() => {}); // when the deadline wins, the run's own failure is no news
    const summary = await Promise.race([run, deadline]);
    console.log(JSON.stringify(summary));
    return 0;
  } catch (error) {
    console.error(`dashboard check failed: ${error instanceof CheckFailed ? error.message : error.stack}`);
    problems.forEach((problem) => console.error(`  ${problem}`));
    return 1;
  } finally {
    clearTimeout(timer);
    await browser?.close().catch(() => {});
  }
}

// Exit at once: when the deadline struck mid-launch, nothing else may be left to wait for
// (Playwright kills the browsers it started when the process exits).
process.exit(await main());
