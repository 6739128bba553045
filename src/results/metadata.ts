/**
 * What `results/<name>.meta.json` says about how the results were produced, so a diff between two CSVs can be read
 * against the machines and versions behind them. `collectMetadata` is pure (the caller gathers the facts);
 * `readProvenance` is the one part that runs processes.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { execa, type Result } from 'execa';
import type { RunRecord, RunStatus } from '../runner/protocol.js';
import type { BackendName } from '../spec/types.js';
import { STATUS_SEVERITY } from './aggregate.js';

/** The git state of the working tree the runs were started from. */
export interface Provenance {
  /** Full hash of HEAD. */
  commit: string;
  /** Tracked files differ from HEAD (untracked files, such as fresh results, do not count); null if unknown. */
  dirty: boolean | null;
}

export interface MetadataInput {
  mpxVersion: string;
  /** `process.version`. */
  nodeVersion: string;
  /** Package name → version of the tfjs packages in use, e.g. `{ '@tensorflow/tfjs-core': '4.22.0' }`. */
  tfjsVersions: Readonly<Record<string, string>>;
  /** Operating system, e.g. `{ platform: 'linux', release: '6.8.0', arch: 'x64' }` (from `node:os`). */
  os: { platform: string; release: string; arch: string };
  /** `os.cpus()` (only `model` is read; the length is the core count). */
  cpus: ReadonlyArray<{ model: string }>;
  /** GPUs the machine has (`detectGpus()` in runner/devices.ts); empty when there is none or no nvidia-smi. */
  gpus: ReadonlyArray<GpuDescription>;
  /** From `readProvenance`; null outside a git checkout. */
  provenance: Provenance | null;
  spec: { name: string; file: string; sha256: string };
  /** When the results were produced. */
  date: Date;
  /** Runs the plan has (cells × repeats). */
  plannedRuns: number;
  /** The records written alongside (the source of the backends and the counts). */
  records: readonly RunRecord[];
  /**
   * How many of `records` were reused from an earlier `mpx run` (resume) rather than produced by this one: the
   * machine facts above describe the latest invocation, so a reviewer can see that some rows are older. @default 0
   */
  reusedRuns?: number;
}

/** One GPU as the metadata records it. */
export interface GpuDescription {
  name: string;
  /** NVIDIA driver version, null if unknown. */
  driverVersion: string | null;
  memoryTotalBytes: number | null;
}

export interface RunMetadata {
  mpxVersion: string;
  nodeVersion: string;
  tfjsVersions: Record<string, string>;
  /** Backends that ran at least one recorded run, sorted. */
  backends: BackendName[];
  /** Unique CPU model names joined with ` | ` (null if the OS reports none), and logical core count. */
  cpu: { model: string | null; cores: number };
  /** GPUs present on the machine (whether or not a backend used them: see `backends`), in nvidia-smi order. */
  gpus: GpuDescription[];
  /** `platform release arch`, e.g. `linux 6.8.0 x64`. */
  os: string;
  git: Provenance | null;
  spec: { name: string; file: string; sha256: string };
  /** ISO 8601, UTC. */
  date: string;
  /** `reused`: records carried over from an earlier `mpx run` (see `MetadataInput.reusedRuns`). */
  runs: { planned: number; recorded: number; reused: number } & Record<RunStatus, number>;
}

export function collectMetadata(input: MetadataInput): RunMetadata {
  const byStatus = Object.fromEntries(STATUS_SEVERITY.map((s) => [s, 0])) as Record<RunStatus, number>;
  for (const record of input.records) byStatus[record.status] += 1;

  const backends = new Set<BackendName>();
  for (const record of input.records) if (record.backend !== null) backends.add(record.backend);

  const cpuModels = [...new Set(input.cpus.map((c) => c.model.trim()).filter((m) => m !== ''))];

  return {
    mpxVersion: input.mpxVersion,
    nodeVersion: input.nodeVersion,
    tfjsVersions: Object.fromEntries(Object.entries(input.tfjsVersions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    backends: [...backends].sort(),
    cpu: { model: cpuModels.length === 0 ? null : cpuModels.join(' | '), cores: input.cpus.length },
    gpus: input.gpus.map((g) => ({ name: g.name, driverVersion: g.driverVersion, memoryTotalBytes: g.memoryTotalBytes })),
    os: `${input.os.platform} ${input.os.release} ${input.os.arch}`,
    git: input.provenance === null ? null : { ...input.provenance },
    spec: { name: input.spec.name, file: input.spec.file, sha256: input.spec.sha256 },
    date: input.date.toISOString(),
    runs: { planned: input.plannedRuns, recorded: input.records.length, reused: input.reusedRuns ?? 0, ...byStatus },
  };
}

const GIT_TIMEOUT_MS = 10_000;

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
  try {
    const git = (args: string[]) => execa('git', args, { cwd, reject: false, timeout: GIT_TIMEOUT_MS, stdin: 'ignore' });
    const head = await git(['rev-parse', '--verify', 'HEAD']);
    const commit = typeof head.stdout === 'string' ? head.stdout.trim() : '';
    if (head.failed || !/^[0-9a-f]{40,64}$/.test(commit)) return null;
    const excludes = await excludePathspecs(git, cwd, options.ignorePaths ?? []);
    // `:/` is the whole tree (not just `cwd`); the excludes need a positive pathspec beside them.
    const status = await git(['status', '--porcelain', '--untracked-files=no', '--', ...(excludes.length > 0 ? [':/', ...excludes] : [])]);
    const dirty = status.failed || typeof status.stdout !== 'string' ? null : status.stdout.trim() !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}

/** `:(top,exclude)<path>` for each path inside the work tree (paths outside it cannot change it and are left out). */
async function excludePathspecs(git: (args: string[]) => Promise<Result>, cwd: string, paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const top = await git(['rev-parse', '--show-toplevel']);
  if (top.failed || typeof top.stdout !== 'string') return [];
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
