/**
 * The reports as a person sees them, in a real headless browser (Debian's `chromium`, driven over the DevTools
 * protocol by puppeteer-core; `.ci/run` installs it): the HTML report shows every chart with the marks the fixture
 * implies, logs no console error, requests nothing, and runs nothing of a hostile spec's; the Markdown's Mermaid
 * blocks parse with Mermaid's own parser and draw each policy in the colour the text names. Screenshots land in
 * test-output/report/ for a human to open.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'csv-parse/sync';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtmlReport } from '../../../src/results/report/html.js';
import { renderMarkdownReport } from '../../../src/results/report/markdown.js';
import { POLICY_COLORS } from '../../../src/results/report/mermaid.js';
import { BUDGET_BYTES, fixtureInput, fixtureText } from './fixture.js';
import { HOSTILE_DESCRIPTION_FULL, hostileInput } from './hostile.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OUT = join(ROOT, 'test-output/report');
const MERMAID = join(ROOT, 'node_modules/mermaid/dist/mermaid.min.js');
const CHROMIUM_CANDIDATES = [process.env.MPX_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter((p): p is string => !!p);

let browser: Browser;

beforeAll(async () => {
  const executablePath = CHROMIUM_CANDIDATES.find((p) => existsSync(p));
  if (executablePath === undefined) {
    throw new Error(`no Chromium found (${CHROMIUM_CANDIDATES.join(', ')}): apt-get install chromium (CI's .ci/run does), or set MPX_CHROMIUM`);
  }
  await mkdir(OUT, { recursive: true });
  browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});

afterAll(async () => {
  await browser?.close();
});

interface Visit {
  page: Page;
  /** Console messages of type error or warning, and uncaught page errors. */
  problems: string[];
  /** Every request other than the page itself. */
  requests: string[];
  dialogs: string[];
}

/** Opens `html` from a file, as a reviewer who downloaded the artifact would, watching everything it does. */
async function visit(name: string, html: string): Promise<Visit> {
  const file = join(OUT, `${name}.html`);
  await writeFile(file, html);
  const url = pathToFileURL(file).href;
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const visit: Visit = { page, problems: [], requests: [], dialogs: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') visit.problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => visit.problems.push(`pageerror: ${String(e)}`));
  page.on('request', (r) => {
    if (r.url() !== url) visit.requests.push(r.url());
  });
  page.on('dialog', (d) => {
    visit.dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(url, { waitUntil: 'load' });
  return visit;
}

/** Marks per layer of one chart: the children of the SVG groups Vega names `<layer>_marks`. */
async function markCounts(page: Page, chart: string): Promise<Record<string, number>> {
  return page.evaluate((id) => {
    const counts: Record<string, number> = {};
    for (const group of document.querySelectorAll(`figure[data-chart="${id}"] g.role-mark`)) {
      const layer = [...group.classList].find((c) => c.endsWith('_marks'))!.replace(/_marks$/, '');
      counts[layer] = (counts[layer] ?? 0) + group.children.length;
    }
    return counts;
  }, chart);
}

/** What the fixture CSV implies, computed from its columns here (not by the report code). */
function expectedMarks() {
  const records = parse<Record<string, string>>(fixtureText('report-fixture.csv'), { columns: true });
  const peakOf = (r: Record<string, string>) => Number(r[r.backend === 'torch' ? 'peak_bytes' : 'peak_tf_modeled_bytes'] || Number.NaN);
  const ok = records.filter((r) => !Number.isNaN(peakOf(r)));
  const series = (rows: typeof records) => new Set(rows.map((r) => `${r.model}|${r.backend}|${r.policy}`)).size;
  const float32 = new Map(ok.filter((r) => r.policy === 'float32').map((r) => [`${r.model}|${r.backend}|${r.batch_size}`, peakOf(r)]));
  const ratios = ok.filter((r) => r.policy !== 'float32' && float32.has(`${r.model}|${r.backend}|${r.batch_size}`));
  const panels = [...new Set(records.map((r) => `${r.model}|${r.backend}`))];
  const panelMax = (panel: string) => Math.max(...ok.filter((r) => `${r.model}|${r.backend}` === panel).map(peakOf));
  const anatomyParts = ok.reduce((sum, r) => {
    const state = ['params_bytes', 'optimizer_bytes', 'accumulator_bytes', ...(r.backend === 'torch' ? ['grads_bytes'] : [])];
    const known = state.map((c) => Number(r[c] || 0));
    return sum + known.filter((b) => b > 0).length + (peakOf(r) - known.reduce((a, b) => a + b, 0) > 0 ? 1 : 0);
  }, 0);
  const withValue = (column: string) => ok.filter((r) => r[column] !== '' && Number.isFinite(Number(r[column])));
  const capacity = parse<Record<string, string>>(fixtureText('report-fixture.capacity.csv'), { columns: true });
  return {
    peak: {
      peak_lines: series(ok),
      peak_points: ok.length,
      oom_marks: records.filter((r) => r.status === 'oom').length,
      budget_rule: panels.filter((p) => BUDGET_BYTES <= 3 * panelMax(p)).length,
    },
    ratio: { ratio_lines: series(ratios), ratio_points: ratios.length, float32_rule: panels.length },
    anatomy: { anatomy_bars: anatomyParts },
    step: { step_lines: series(withValue('step_ms')), step_points: withValue('step_ms').length },
    throughput: { throughput_lines: series(withValue('samples_per_s')), throughput_points: withValue('samples_per_s').length },
    loss: { loss_lines: series(withValue('final_loss')), loss_points: withValue('final_loss').length },
    accuracy: { accuracy_lines: series(withValue('eval_accuracy')), accuracy_points: withValue('eval_accuracy').length },
    capacity: { capacity_bars: capacity.length },
  };
}

describe('the HTML report in Chromium', () => {
  let report: Visit;
  beforeAll(async () => {
    report = await visit('report-fixture', await renderHtmlReport(fixtureInput()));
  });

  it('logs no console error or warning, requests nothing, opens no dialog', () => {
    expect(report.problems).toEqual([]);
    expect(report.requests).toEqual([]);
    expect(report.dialogs).toEqual([]);
  });

  it('draws each chart with the marks the fixture implies', async () => {
    const expected = expectedMarks();
    // the fixture exercises every kind of mark: oom crosses, budget rules, lines of both kinds
    expect(expected.peak.oom_marks).toBe(2);
    expect(expected.peak.budget_rule).toBe(2);
    for (const [chart, marks] of Object.entries(expected)) expect(await markCounts(report.page, chart), chart).toEqual(marks);
  });

  it('draws modeled lines dashed and measured lines solid, in the policy colours', async () => {
    const strokes = await report.page.evaluate(() =>
      [...document.querySelectorAll('figure[data-chart="peak"] g.peak_lines_marks > path')].map((p) => `${p.getAttribute('stroke')} ${p.getAttribute('stroke-dasharray')}`),
    );
    expect(new Set(strokes)).toEqual(
      new Set([
        `${POLICY_COLORS.float32} 6,3`,
        `${POLICY_COLORS.mixed_float16} 6,3`,
        `${POLICY_COLORS.mixed_bfloat16} 6,3`,
        `${POLICY_COLORS.float32} 1,0`,
        `${POLICY_COLORS.mixed_bfloat16} 1,0`,
      ]),
    );
  });

  it('shows every chart on the page (laid out, not empty), and saves a screenshot', async () => {
    const sizes = await report.page.evaluate(() =>
      [...document.querySelectorAll('figure[data-chart] svg')].map((svg) => {
        const box = svg.getBoundingClientRect();
        return box.width > 100 && box.height > 100;
      }),
    );
    expect(sizes).toEqual(Array<boolean>(8).fill(true));
    const png = await report.page.screenshot({ fullPage: true, path: join(OUT, 'report-fixture.png') });
    expect(png.byteLength).toBeGreaterThan(50_000);
  });
});

describe('a hostile spec in Chromium', () => {
  let report: Visit;
  beforeAll(async () => {
    report = await visit('hostile', await renderHtmlReport(hostileInput()));
  });

  it('runs nothing of it: no dialog, no console error (a CSP violation would log one), no request', () => {
    expect(report.dialogs).toEqual([]);
    expect(report.problems).toEqual([]);
    expect(report.requests).toEqual([]);
  });

  it('shows its strings as text and adds no element of its own', async () => {
    const page = await report.page.evaluate(() => ({
      elements: document.querySelectorAll('script, img, iframe, object, embed, link, base, meta[http-equiv="refresh"]').length,
      handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
      description: document.querySelector('.description')?.textContent?.replace(/\s+/g, ' '),
      title: document.title,
    }));
    expect(page).toEqual({ elements: 0, handlers: 0, description: HOSTILE_DESCRIPTION_FULL.replace(/\s+/g, ' ').trim(), title: 'hostile · mpx report' });
    await report.page.screenshot({ path: join(OUT, 'hostile.png') });
  });
});

describe('the Markdown\'s Mermaid blocks, parsed by Mermaid in Chromium', () => {
  let page: Page;
  beforeAll(async () => {
    page = await browser.newPage();
    await page.setContent('<!doctype html><html><body></body></html>');
    await page.addScriptTag({ path: MERMAID });
    await page.evaluate(() => {
      (window as unknown as { mermaid: { initialize(o: object): void } }).mermaid.initialize({ startOnLoad: false });
    });
  });

  const blocksOf = (markdown: string): string[] => [...markdown.matchAll(/^```mermaid\n([\s\S]*?)\n```$/gm)].map((m) => m[1]!);
  const parseAll = (blocks: string[]) =>
    page.evaluate(async (texts) => {
      const mermaid = (window as unknown as { mermaid: { parse(t: string): Promise<{ diagramType: string }> } }).mermaid;
      const out: string[] = [];
      for (const text of texts) {
        try {
          out.push((await mermaid.parse(text)).diagramType);
        } catch (error) {
          out.push(`error: ${String(error)}`);
        }
      }
      return out;
    }, blocks);

  it('parses every block of the fixture, the hostile spec and the committed reports as an xychart', async () => {
    const committed = (await readdir(join(ROOT, 'results'))).filter((n) => n.endsWith('.md'));
    const markdowns = [
      renderMarkdownReport(fixtureInput()),
      renderMarkdownReport(fixtureInput({ budgetBytes: 50e6 })),
      renderMarkdownReport(hostileInput()),
      ...(await Promise.all(committed.map((n) => readFile(join(ROOT, 'results', n), 'utf8')))),
    ];
    const blocks = markdowns.flatMap(blocksOf);
    expect(blocks.length).toBeGreaterThanOrEqual(12);
    expect(new Set(await parseAll(blocks))).toEqual(new Set(['xychart']));
  });

  it('rejects a broken block (the parser is really checking)', async () => {
    expect((await parseAll(['xychart-beta\n  line [1, ]']))[0]).toMatch(/^error: .*Parse error/);
  });

  it('draws the lines in the colours the legend squares name, in policy order, the budget last in red', async () => {
    const [block] = blocksOf(renderMarkdownReport(fixtureInput({ budgetBytes: 50e6 })))
      .filter((b) => b.includes('\n  line ['))
      .slice(-1);
    const strokes = await page.evaluate(async (text) => {
      const mermaid = (window as unknown as { mermaid: { render(id: string, t: string): Promise<{ svg: string }> } }).mermaid;
      const { svg } = await mermaid.render('chart', text);
      const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
      return [...doc.querySelectorAll('.line-plot-0 path, .line-plot-1 path, .line-plot-2 path, .line-plot-3 path')].map((p) => p.getAttribute('stroke'));
    }, block!);
    expect(strokes).toEqual([POLICY_COLORS.float32, POLICY_COLORS.mixed_bfloat16, '#dc2626']);
  });
});
