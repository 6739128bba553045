/**
 * The three renderings of one diff, against golden files (hyperfine keeps one golden file per export format). To
 * refresh after a deliberate change: MPX_UPDATE_GOLDEN=1 npx vitest run test/results/diff/render.test.ts, then review.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFailOn } from '../../../src/cli/diff-flags.js';
import { diffResults } from '../../../src/results/diff/compare.js';
import { renderDiffJson } from '../../../src/results/diff/json.js';
import { MARKDOWN_MAX_TABLE_LINES, renderDiffMarkdown } from '../../../src/results/diff/markdown.js';
import { renderDiffTerminal } from '../../../src/results/diff/terminal.js';
import { parseRunMetadata } from '../../../src/results/metadata.js';
import { parseResultsCsv } from '../../../src/results/table.js';

const HEADER = 'cell,cell_id,model,batch_size,micro_batch_size,policy,accumulation_steps,backend,status,reason,step_ms,step_ms_spread,final_loss,eval_accuracy,peak_bytes,rss_peak_bytes';
const meta = (cpu: string, commit: string, dirty: boolean) =>
  parseRunMetadata(
    JSON.stringify({
  mpxVersion: '0.1.0',
  nodeVersion: 'v20.20.2',
  tfjsVersions: { '@tensorflow/tfjs-core': '4.22.0' },
  backends: ['wasm'],
  cpu: { model: cpu, cores: 2 },
  gpus: [],
  os: 'linux 6.8.0 x64',
  git: { commit, dirty },
  date: '2026-01-01T00:00:00.000Z',
    }),
  );
const base = parseResultsCsv(
  `${HEADER}
0,aaaa,mlp,16,16,float32,1,wasm,ok,,10,1,0.5,0.75,18743456,200000000
1,bbbb,mlp,16,16,mixed_float16,1,wasm,ok,,20,,0.51,0.75,18743456,200000000
2,cccc,cnn,16,16,float32,1,wasm,ok,,30,,0.6,0.7,5000000,210000000
3,dddd,cnn,64,64,float32,1,wasm,ok,,40,,0.4,0.8,9000000,220000000
`,
  'seed',
  'main:results/seed.csv',
  meta('AMD EPYC', '1111111111111111', false),
);
const head = parseResultsCsv(
  `${HEADER}
0,aaaa,mlp,16,16,float32,1,wasm,ok,,10.5,1,0.5,0.75,19800000,200000000
1,b2b2,mlp,16,16,mixed_float16,1,wasm,ok,,20,,0.49,0.76,18743456,200000000
2,cccc,cnn,16,16,float32,1,wasm,failed,Error: kernel Foo | not registered,,,,,,
4,eeee,cnn,256,64,float32,4,wasm,ok,,50,,0.3,0.9,9500000,230000000
`,
  'seed',
  'results/seed.csv',
  meta('Intel Xeon', '2222222222222222', true),
);
const other = parseResultsCsv(`${HEADER}\n0,ffff,mlp,8,8,float32,1,wasm,ok,,1,,nan,0.5,100,100\n`, 'extra', 'results/extra.csv');
const otherBase = parseResultsCsv(`${HEADER}\n0,ffff,mlp,8,8,float32,1,wasm,ok,,1,,0.25,0.5,100,100\n`, 'extra', 'main:results/extra.csv');
const added = parseResultsCsv(`${HEADER}\n0,9999,mlp,8,8,float32,1,wasm,ok,,1,,0.25,0.5,100,100\n`, 'new-spec', 'results/new-spec.csv');
const result = diffResults([base, otherBase], [head, other, added], {
  baseLabel: 'main:results',
  headLabel: 'results',
  failOn: [parseFailOn('peak_bytes:+5%'), parseFailOn('final_loss:+50%')],
});

function golden(file: string, text: string): void {
  const path = new URL(`../../fixtures/results/diff/${file}`, import.meta.url);
  if (process.env.MPX_UPDATE_GOLDEN) writeFileSync(path, text);
  expect(text).toBe(readFileSync(path, 'utf8'));
}

describe('diff renderers', () => {
  it('terminal', () => golden('diff.txt', renderDiffTerminal(result)));
  it('markdown', () => golden('diff.md', renderDiffMarkdown(result)));
  it('markdown --all lists unchanged values too', () => {
    const all = renderDiffMarkdown(result, { showAll: true });
    expect(all).toContain('within noise or unchanged');
    expect(all).toMatch(/\| {2}\| mlp bs=16 float32 acc=1 \| `eval_accuracy` \| 0\.75 \| 0\.75 \| 0 \|/);
  });
  it('json', () => {
    const text = renderDiffJson(result);
    golden('diff.json', text);
    const parsed = JSON.parse(text) as { version: number; failures: unknown[]; tables: Array<{ name: string; added: Array<{ label: string }> }> };
    expect(parsed.version).toBe(1);
    expect(parsed.failures).toHaveLength(2); // peak_bytes +5.6%, and a loss that became nan
    expect(parsed.tables.map((t) => t.name)).toEqual(['extra', 'new-spec', 'seed']);
    expect(text).toContain('"head": "nan"');
  });
  it('markdown caps each table for a GitHub comment and says how much was left out', () => {
    const cells = Array.from({ length: 400 }, (_, i) => `${i},id${i},mlp,${i + 1},${i + 1},float32,1,wasm,ok,,10,,0.5,0.75,1000,200000000`);
    const slower = cells.map((c) => c.replace(',ok,,10,', ',ok,,20,'));
    const big = diffResults([parseResultsCsv(`${HEADER}\n${cells.join('\n')}\n`, 'big', 'a.csv')], [parseResultsCsv(`${HEADER}\n${slower.join('\n')}\n`, 'big', 'b.csv')], {
      baseLabel: 'a',
      headLabel: 'b',
    });
    const text = renderDiffMarkdown(big);
    expect(text).toContain(`… and ${400 - MARKDOWN_MAX_TABLE_LINES} more lines (all of them: \`mpx diff --format json\`).`);
    expect(text.length).toBeLessThan(65_536);
  });

  it('a markdown table cell never breaks the table: pipes are escaped', () => {
    expect(renderDiffMarkdown(result)).toContain('Error: kernel Foo \\| not registered');
  });
});
