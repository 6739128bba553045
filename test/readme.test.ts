import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED_SECTIONS } from '../src/results/readme-sections.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8');

describe('README', () => {
  it.each(GENERATED_SECTIONS.map((section) => [section.start, section] as const))('has the section %s as its source renders it (run npm run docs to refresh)', (_, section) => {
    const start = readme.indexOf(section.start);
    const end = readme.indexOf(section.end);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    const body = readme.slice(start + section.start.length, end).trim();
    expect(body).toBe(section.render((path) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')).trim());
  });

  it('keeps the two quick-start commands, and CI runs the same test command from a clean install', () => {
    expect(readme).toContain('npm install && npx mpx run experiments/*.yaml');
    expect(readme).toContain('npm test');
    expect(ci).toMatch(/^npm ci$/m);
    expect(ci).toMatch(/^npm test$/m);
  });
});
