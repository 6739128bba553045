#!/usr/bin/env node
// The README's chart image: a screenshot of one chart section of an HTML report, taken in headless Chromium.
//   node scripts/report-example.mjs results/seed-claims.html docs/report-example.png [chart id, default peak]
// Needs Chromium (MPX_CHROMIUM, else /usr/bin/chromium) and the dev dependency puppeteer-core.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';

const [html, png, chart = 'peak'] = process.argv.slice(2);
if (!html || !png) {
  process.stderr.write('usage: node scripts/report-example.mjs <report.html> <out.png> [chart id]\n');
  process.exit(2);
}
const browser = await puppeteer.launch({
  executablePath: process.env.MPX_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 800, deviceScaleFactor: 1 });
  await page.goto(pathToFileURL(resolve(html)).href, { waitUntil: 'load' });
  const section = await page.$(`#chart-${chart}`);
  if (section === null) throw new Error(`${html} has no chart "${chart}"`);
  await section.screenshot({ path: png });
  process.stderr.write(`wrote ${png}\n`);
} finally {
  await browser.close();
}
