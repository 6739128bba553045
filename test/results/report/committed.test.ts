/**
 * The committed reports (results/<name>.md and .html) are what `mpx report` writes from the committed results today:
 * a change to the reports' code or to a results CSV without `npm run reports` fails here, as the README's generated
 * sections do in test/readme.test.ts.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const out = await mkdtemp(join(tmpdir(), 'mpx-reports-'));
afterAll(() => rm(out, { recursive: true, force: true }));

describe('the committed reports', () => {
  it('exist for every committed results CSV and equal a fresh mpx report of them (npm run reports)', async () => {
    const results = await readdir(join(ROOT, 'results'));
    const names = results.filter((n) => n.endsWith('.csv') && !n.endsWith('.capacity.csv')).map((n) => n.replace(/\.csv$/, ''));
    expect(names.length).toBeGreaterThan(0);
    const r = await execa(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'report', '--out-dir', out], { cwd: ROOT, reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    for (const name of names) {
      for (const extension of ['md', 'html']) {
        const committed = await readFile(join(ROOT, 'results', `${name}.${extension}`), 'utf8').catch(() => `results/${name}.${extension} is missing`);
        expect(committed, `results/${name}.${extension} is stale: run npm run reports`).toBe(await readFile(join(out, `${name}.${extension}`), 'utf8'));
      }
    }
  });
});
