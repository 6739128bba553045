import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderColumnReference } from '../src/results/columns.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8');

describe('README', () => {
  it('has the column reference generated from src/results/columns.ts (run npm run docs to refresh)', () => {
    const start = readme.indexOf('<!-- columns:start');
    const end = readme.indexOf('<!-- columns:end -->');
    const section = readme.slice(readme.indexOf('\n', start) + 1, end).trim();
    expect(section).toBe(renderColumnReference().trim());
  });

  it('keeps the two quick-start commands, and CI runs the same test command from a clean install', () => {
    expect(readme).toContain('npm install && npx mpx run experiments/*.yaml');
    expect(readme).toContain('npm test');
    expect(ci).toMatch(/^npm ci$/m);
    expect(ci).toMatch(/^npm test$/m);
  });
});
