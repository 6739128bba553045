/**
 * The one way mpx runs git: `git` in a directory, never throwing for git's own failures (a missing ref, not a
 * repository), with a timeout. Callers decide what a failure means.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { execa } from 'execa';
import type { Provenance } from '../results/metadata.js';

export interface GitResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** git itself could not be started (not installed, not on PATH). */
  isMissing: boolean;
}

export type Git = (args: string[]) => Promise<GitResult>;

const GIT_TIMEOUT_MS = 30_000;
/** `git cat-file blob` of a results CSV: large matrices make large files. */
const GIT_MAX_BUFFER = 256 * 1024 * 1024;

/** Runs git in `cwd`; stdout is returned as written (final newline kept: blobs are read byte for byte). */
export function gitIn(cwd: string): Git {
  return async (args) => {
    try {
      const r = await execa('git', args, { cwd, reject: false, timeout: GIT_TIMEOUT_MS, stdin: 'ignore', stripFinalNewline: false, maxBuffer: GIT_MAX_BUFFER });
      const isMissing = r.failed && r.exitCode === undefined && /ENOENT/.test(String(r.message));
      return { ok: !r.failed, stdout: String(r.stdout), stderr: String(r.stderr), isMissing };
    } catch (error) {
      return { ok: false, stdout: '', stderr: String(error), isMissing: false };
    }
  };
}

export interface ProvenanceOptions {
  /**
   * Paths (relative to `cwd`, or absolute) whose changes do not make the tree dirty: the results directory, which an
   * earlier or interrupted `mpx run` has modified on purpose. @default []
   */
  ignorePaths?: readonly string[];
}

/**
 * HEAD's commit and whether tracked files are modified, for the checkout containing `cwd`. Never throws: null when
 * git is not installed, `cwd` is not in a repository, or git fails. `dirty` ignores untracked files (as
 * `git describe --dirty` does) and `ignorePaths`, so results written by an earlier run do not mark the tree dirty.
 */
export async function readProvenance(cwd: string, options: ProvenanceOptions = {}): Promise<Provenance | null> {
  const git = gitIn(cwd);
  const head = await git(['rev-parse', '--verify', 'HEAD']);
  const commit = head.stdout.trim();
  if (!head.ok || !/^[0-9a-f]{40,64}$/.test(commit)) return null;
  const excludes = await excludePathspecs(git, cwd, options.ignorePaths ?? []);
  // `:/` is the whole tree (not just `cwd`); the excludes need a positive pathspec beside them.
  const status = await git(['status', '--porcelain', '--untracked-files=no', '--', ...(excludes.length > 0 ? [':/', ...excludes] : [])]);
  return { commit, dirty: status.ok ? status.stdout.trim() !== '' : null };
}

/** `:(top,exclude)<path>` for each path inside the work tree (paths outside it cannot change it and are left out). */
async function excludePathspecs(git: Git, cwd: string, paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const top = await git(['rev-parse', '--show-toplevel']);
  if (!top.ok) return [];
  const root = top.stdout.trim();
  let base = cwd;
  try {
    base = realpathSync(cwd); // git reports the real path of the top level; compare like with like
  } catch {
    // keep cwd as given
  }
  return paths.flatMap((path) => {
    const inside = relative(root, resolve(base, path));
    if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) return [];
    return [`:(top,exclude)${inside.split(sep).join('/')}`];
  });
}
