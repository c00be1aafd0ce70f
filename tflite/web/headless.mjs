// Runs the FastSal web demo in headless Chromium (playwright-core, no bundled browser) and prints the
// page's answer as JSON on stdout:
//   node tflite/web/headless.mjs PAGE_URL IMAGE_URL [--runs N] [--with-input] [--timeout SECONDS]
// PAGE_URL is the demo page (with ?model=...), IMAGE_URL an image the page can fetch. The first run is a
// warm-up; with --runs N it runs N more times and reports their inference times (ms). The browser is
// $CHROMIUM (default /usr/bin/chromium), started with a fresh temporary profile and no network probes.
import {chromium} from 'playwright-core';

const args = process.argv.slice(2);
const positional = [];
const options = {runs: 0, withInput: false, timeout: 120};
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs') options.runs = Number.parseInt(args[++i], 10);
  else if (args[i] === '--with-input') options.withInput = true;
  else if (args[i] === '--timeout') options.timeout = Number(args[++i]);
  else positional.push(args[i]);
}
if (positional.length !== 2 || !(options.runs >= 0)) {
  console.error('usage: node headless.mjs PAGE_URL IMAGE_URL [--runs N] [--with-input] [--timeout SECONDS]');
  process.exit(2);
}
const [pageUrl, imageUrl] = positional;
const timeoutMs = options.timeout * 1000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: timeoutMs,
});
let failed = false;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeoutMs);
  page.on('console', (message) => console.error(`[page ${message.type()}] ${message.text()}`));
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  page.on('requestfailed', (request) => console.error(`[request failed] ${request.url()} ${request.failure()?.errorText}`));
  await page.goto(pageUrl, {waitUntil: 'load'});
  const info = await page.evaluate(() => window.fastsalReady);
  const answer = await page.evaluate(([url, withInput]) => window.fastsalRun(url, {withInput}),
    [imageUrl, options.withInput]);
  const times = [];
  for (let i = 0; i < options.runs; i++) {
    times.push((await page.evaluate((url) => window.fastsalRun(url), imageUrl)).inferenceMs);
  }
  const sorted = [...times].sort((a, b) => a - b);
  answer.model = info;
  answer.userAgent = await page.evaluate(() => navigator.userAgent);
  answer.crossOriginIsolated = await page.evaluate(() => self.crossOriginIsolated);
  answer.runs = times;
  answer.medianMs = sorted.length ? sorted[Math.floor(sorted.length / 2)] : answer.inferenceMs;
  process.stdout.write(JSON.stringify(answer) + '\n');
} catch (error) {
  console.error(`headless run failed: ${error && error.stack ? error.stack : error}`);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
