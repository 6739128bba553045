import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gitIn, readProvenance } from '../../src/cli/git.js';

describe('readProvenance', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpx-provenance-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('is null outside a git repository (never throws)', async () => {
    expect(await readProvenance(tempDir())).toBeNull();
    expect(await readProvenance(join(tempDir(), 'missing'))).toBeNull();
  });

  it('reads the commit and whether tracked files changed', async () => {
    const dir = tempDir();
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir, stdio: 'pipe' });
    git('init', '-q');
    writeFileSync(join(dir, 'a.txt'), 'one\n');
    git('add', 'a.txt');
    git('commit', '-q', '-m', 'init');
    const commit = git('rev-parse', 'HEAD').toString().trim();

    writeFileSync(join(dir, 'untracked.csv'), 'x\n');
    expect(await readProvenance(dir)).toEqual({ commit, dirty: false });
    writeFileSync(join(dir, 'a.txt'), 'two\n');
    expect(await readProvenance(dir)).toEqual({ commit, dirty: true });
  });

  it('ignores changes under ignorePaths (the results directory), from a subdirectory too', async () => {
    const dir = tempDir();
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir, stdio: 'pipe' });
    git('init', '-q');
    mkdirSync(join(dir, 'results'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'results', 'a.csv'), 'one\n');
    writeFileSync(join(dir, 'spec.yaml'), 'one\n');
    git('add', '.');
    git('commit', '-q', '-m', 'init');
    writeFileSync(join(dir, 'results', 'a.csv'), 'two\n');
    expect((await readProvenance(dir))?.dirty).toBe(true);
    expect((await readProvenance(dir, { ignorePaths: ['results'] }))?.dirty).toBe(false);
    expect((await readProvenance(join(dir, 'sub'), { ignorePaths: ['../results'] }))?.dirty).toBe(false);
    expect((await readProvenance(dir, { ignorePaths: [join(dir, 'results')] }))?.dirty).toBe(false);
    // a path outside the repository is simply not excluded
    expect((await readProvenance(dir, { ignorePaths: [tempDir()] }))?.dirty).toBe(true);
    writeFileSync(join(dir, 'spec.yaml'), 'two\n');
    expect((await readProvenance(dir, { ignorePaths: ['results'] }))?.dirty).toBe(true);
  });
});

describe('gitIn', () => {
  it('never throws for git failures and says when git itself is missing', async () => {
    const outside = await gitIn(tmpdir())(['rev-parse', '--verify', 'HEAD']);
    expect(outside).toMatchObject({ ok: false, isMissing: false });
    const previous = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(await gitIn(tmpdir())(['--version'])).toMatchObject({ ok: false, isMissing: true });
    } finally {
      process.env.PATH = previous;
    }
  });
});
