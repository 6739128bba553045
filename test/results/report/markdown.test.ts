import { marked, type Token, type Tokens } from 'marked';
import { describe, expect, it } from 'vitest';
import { CHARTS_END, CHARTS_START, renderMarkdownReport } from '../../../src/results/report/markdown.js';
import { escapeMarkdown, mermaidText } from '../../../src/results/report/escape.js';
import { expectGolden, fixtureInput } from './fixture.js';
import { HOSTILE_DESCRIPTION, hostileInput } from './hostile.js';

function tokens(markdown: string): Token[] {
  const all: Token[] = [];
  void marked.walkTokens(marked.lexer(markdown), (t) => {
    all.push(t);
  });
  return all;
}
const allMermaidBlocks = (markdown: string): string[] => tokens(markdown).filter((t): t is Tokens.Code => t.type === 'code' && t.lang === 'mermaid').map((t) => t.text);
/** The peak charts (lines); the capacity chart is the one with a bar. */
const mermaidBlocks = (markdown: string): string[] => allMermaidBlocks(markdown).filter((b) => !b.includes('\n  bar ['));

describe('renderMarkdownReport', () => {
  const markdown = renderMarkdownReport(fixtureInput());

  it('writes the fixture report as the golden file says', () => {
    expectGolden('golden.md', markdown, (actual, expected) => expect(actual).toBe(expected));
  });

  it('has the sections a reader looks for, and one Mermaid chart per model and engine', () => {
    const headings = tokens(markdown).filter((t): t is Tokens.Heading => t.type === 'heading').map((t) => t.text);
    expect(headings).toEqual([
      'report-fixture: does mixed precision save memory?',
      'Answer',
      'Peak memory by batch size',
      'report-fixture: peak memory vs batch size',
      'report-fixture: largest batch that fits the budget',
      'Cells that did not finish (11)',
      'Capacity: the largest batch that fits the budget',
      'Provenance',
    ]);
    const blocks = mermaidBlocks(markdown);
    expect(blocks).toHaveLength(4);
    for (const block of blocks) expect(block).toMatch(/^%%\{init: \{"themeVariables": \{"xyChart": \{"plotColorPalette": "[#0-9a-f, ]+"\}\}\}\}%%\nxychart-beta\n/);
  });

  it('charts only batch sizes where every charted policy has a peak, and says what it left out', () => {
    const [, , cnnWasm] = mermaidBlocks(markdown);
    // cnn on wasm: float32 ran out of memory at 512, mixed_bfloat16 failed at 32
    expect(cnnWasm).toContain('x-axis "batch size" ["8", "128"]');
    expect(markdown).toContain('bs=32 mixed\\_bfloat16: failed');
    expect(markdown).toContain('bs=512 float32: oom (reached 159.3 MB)');
    // torch has no float16 kernels on a CPU: no line for it, and the palette has two policy colours
    const cnnTorch = mermaidBlocks(markdown)[3]!;
    expect(cnnTorch.match(/^ {2}line /gm)).toHaveLength(2); // float32, mixed_bfloat16
    expect(cnnTorch).toContain('"plotColorPalette": "#2563eb, #16a34a"');
    // 150 MB is more than 3× every charted peak (the cells over it are oom, not charted): not drawn, and said so
    expect(markdown).toContain('The budget (150.0 MB) is more than 3× every charted peak, so it is not drawn.');
  });

  it('draws the budget as a last, red line where it is near the peaks', () => {
    const blocks = mermaidBlocks(renderMarkdownReport(fixtureInput({ budgetBytes: 50e6 })));
    const cnnTorch = blocks[3]!;
    expect(cnnTorch).toContain('"plotColorPalette": "#2563eb, #16a34a, #dc2626"');
    expect(cnnTorch.split('\n').at(-1)).toBe('  line [50, 50, 50]');
    expect(renderMarkdownReport(fixtureInput({ budgetBytes: 50e6 }))).toContain('🟥 budget (50.00 MB)');
  });

  it('puts the charts between the markers the pull-request workflow lifts them by', () => {
    const start = markdown.indexOf(CHARTS_START);
    const end = markdown.indexOf(CHARTS_END);
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    expect(mermaidBlocks(markdown.slice(start, end))).toHaveLength(4);
    expect(allMermaidBlocks(markdown.slice(start, end))).toHaveLength(5);
  });

  it('charts the capacity searches as bars, and says which bars are lower bounds', () => {
    const [capacity] = allMermaidBlocks(markdown).filter((b) => b.includes('\n  bar ['));
    expect(capacity).toContain('title "largest batch under 150.0 MB (modeled peak)"');
    expect(capacity).toContain('x-axis ["wide-mlp f32", "wide-mlp bf16", "cnn f32", "cnn bf16"]');
    expect(capacity).toContain('bar [4096, 4096, 481, 963]');
    expect(markdown).toContain('The whole searched range fits for wide-mlp float32 acc=1 wasm, wide-mlp mixed\\_bfloat16 acc=1 wasm: their bars are lower bounds.');
  });

  it('labels each figure measured or modeled', () => {
    expect(markdown).toContain('**measured** `peak_bytes`');
    expect(markdown).toContain('**modeled** `peak_tf_modeled_bytes`');
    expect(markdown).toContain('| wide-mlp | 1 | torch (measured) | float32 |');
    expect(mermaidBlocks(markdown)[0]).toContain('y-axis "peak MB (modeled)"');
    expect(mermaidBlocks(markdown)[1]).toContain('y-axis "peak MB (measured)"');
  });
});

describe('hostile spec and results strings', () => {
  const markdown = renderMarkdownReport(hostileInput());
  const html = marked.parse(markdown, { async: false });

  it('reach the Markdown as text: no tag, link, image or heading of theirs survives rendering', () => {
    expect(html).not.toMatch(/<(img|script|svg)\b/i);
    expect(html).not.toMatch(/href="javascript:/i);
    expect(html).toContain('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
    const headings = tokens(markdown).filter((t) => t.type === 'heading');
    expect(headings).toHaveLength(8);
  });

  it('cannot add or break Mermaid blocks: the same five charts, each a single title, axis and line or bar statements', () => {
    expect(mermaidBlocks(markdown)).toHaveLength(4);
    const blocks = allMermaidBlocks(markdown);
    expect(blocks).toHaveLength(5);
    for (const block of blocks) {
      const statements = block.split('\n').slice(2).map((l) => l.trim().split(' ')[0]);
      expect(statements.filter((s) => s === 'title')).toHaveLength(1);
      expect(statements.every((s) => ['title', 'x-axis', 'y-axis', 'line', 'bar'].includes(s!))).toBe(true);
      expect(block.split('\n').length).toBe(2 + 3 + block.match(/^ {2}(line|bar) /gm)!.length);
      expect(block.match(/%%/g)).toHaveLength(2); // only the init directive's
    }
  });

  it('escape functions', () => {
    expect(escapeMarkdown(HOSTILE_DESCRIPTION)).toBe('&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(escapeMarkdown('# head\n| cell |')).toBe('\\# head \\| cell \\|');
    expect(escapeMarkdown('1. item')).toBe('1\\. item');
    expect(escapeMarkdown('1.13.0a0')).toBe('1.13.0a0');
    expect(mermaidText('a"] line [1]\n%%{x}%%')).toBe('a__ line _1_ ___x___');
    expect(mermaidText('x'.repeat(100))).toHaveLength(60);
  });
});
