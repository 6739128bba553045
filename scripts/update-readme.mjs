// Rewrites the generated sections of README.md from their single sources (run `npm run docs` after a build).
// test/readme.test.ts fails when the README and the sources disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import { GENERATED_SECTIONS } from '../dist/results/readme-sections.js';

const file = new URL('../README.md', import.meta.url);
let text = readFileSync(file, 'utf8');
for (const section of GENERATED_SECTIONS) {
  const from = text.indexOf(section.start);
  const to = text.indexOf(section.end);
  if (from < 0 || to < from) throw new Error(`README.md lacks the ${section.start} … ${section.end} markers`);
  const body = section.render((path) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8'));
  text = `${text.slice(0, from + section.start.length)}\n${body}\n${text.slice(to)}`;
}
writeFileSync(file, text);
