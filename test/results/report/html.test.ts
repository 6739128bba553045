import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compactSvg, renderHtmlReport } from '../../../src/results/report/html.js';
import { fixtureInput } from './fixture.js';
import { HOSTILE_DESCRIPTION, hostileInput } from './hostile.js';

const CHART_IDS = ['peak', 'ratio', 'anatomy', 'step', 'throughput', 'loss', 'accuracy', 'capacity'];

describe('renderHtmlReport', () => {
  const warnings: string[] = [];
  const page = renderHtmlReport(fixtureInput(), { warnings });

  it('renders every chart of the fixture without a Vega-Lite or Vega warning', async () => {
    const html = await page;
    expect([...html.matchAll(/<figure class="figure" data-chart="(\w+)">\n<svg /g)].map((m) => m[1])).toEqual(CHART_IDS);
    expect(warnings).toEqual([]);
  });

  it('is self-contained: no script, no external reference, a CSP that allows only its own stylesheet by hash', async () => {
    const html = await page;
    expect(html).not.toMatch(/<script|<img|<link|<iframe|<object|<embed|\son\w+=|javascript:/i);
    expect(html).not.toMatch(/(?:src|href)="(?!#)/); // only in-page references (SVG clip paths)
    expect(html).not.toMatch(/url\((?!#)/);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    expect(csp).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; img-src 'none'; script-src 'none'/);
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(html).not.toMatch(/\sstyle="/); // an inline style attribute would need 'unsafe-inline'
  });

  it('is the same bytes whatever was rendered before it (Vega\'s id counters are renamed per chart)', async () => {
    const first = await page;
    await renderHtmlReport(fixtureInput({ budgetBytes: 50e6 }));
    expect(await renderHtmlReport(fixtureInput())).toBe(first);
    const ids = [...first.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps the description, provenance and a table of every peak in the page text', async () => {
    const html = await page;
    expect(html).toContain('<p class="description">Report fixture: the seed-claims MLP and CNN');
    expect(html).toContain('<th>commit</th><td>6d82b4f7b055</td>');
    expect(html).toContain('<td class="num status">oom (≥ 159.3 MB)</td>');
    expect(html).toContain('<td class="num ratio-saves">4.740 MB (0.80×)</td>');
    expect(html).toContain('<td class="num">81.40 MB</td>'); // fits where float32 ran out of memory: no ratio
  });
});

describe('renderHtmlReport with hostile strings', () => {
  it('escapes them in HTML and in SVG text', async () => {
    const html = await renderHtmlReport(hostileInput());
    // no element of theirs, and no attribute of theirs inside any tag
    expect(html).not.toMatch(/<script|<img|<svg onload/i);
    expect(html).not.toMatch(/<[^>]*\son\w+=/i);
    expect(html).toContain(`<p class="description">${HOSTILE_DESCRIPTION.replace(/</g, '&lt;').replace(/>/g, '&gt;')}`);
    // the CSV's model name reaches Vega's facet headers and legends as text
    expect(html).toContain('&lt;/text&gt;&lt;script&gt;alert(5)&lt;/script&gt;');
  });
});

describe('SVG post-processing', () => {
  it('renames ids and their references under a prefix, in order of first appearance', () => {
    const svg = '<svg><g clip-path="url(#clip7)"/><clipPath id="clip7"><rect/></clipPath><use href="#clip7"/><g id="x"/><text>id="clip7"</text></svg>';
    expect(compactSvg(svg, 'peak-')).toBe('<svg><g clip-path="url(#peak-1)"/><clipPath id="peak-1"><rect/></clipPath><use href="#peak-1"/><g id="peak-2"/><text>id="clip7"</text></svg>');
  });

  it('rounds coordinates in attributes, never text, and drops paths that draw nothing', () => {
    const svg = '<g transform="translate(38.33333333333333,-0.0001)"><path class="background" aria-hidden="true" d="M0,0h0v0h0Z"/><text x="1.23456">1.23456</text></g>';
    expect(compactSvg(svg, 'c-')).toBe('<g transform="translate(38.33,0)"><text x="1.23">1.23456</text></g>');
  });
});
