/**
 * What `results/<name>.meta.json` says about how the results were produced, so a diff between two CSVs can be read
 * against the machines and versions behind them. Pure: the caller gathers the facts (`cli/environment.ts`).
 */
import { RECORDED_STATUSES, type RecordedStatus, type StoredRecord } from '../runner/protocol.js';
import type { BackendName } from '../spec/types.js';

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
  /** The PyTorch behind `backend: torch` (its probe); null when no cell uses torch. @default null */
  torch?: TorchDescription | null;
  /** From `readProvenance`; null outside a git checkout. */
  provenance: Provenance | null;
  spec: { name: string; file: string; sha256: string };
  /** When the results were produced. */
  date: Date;
  /** Runs the plan has (cells × repeats). */
  plannedRuns: number;
  /** The records written alongside (the source of the backends and the counts). */
  records: readonly StoredRecord[];
  /**
   * How many of `records` were reused from an earlier `mpx run` (resume) rather than produced by this one: the
   * machine facts above describe the latest invocation, so a reviewer can see that some rows are older. @default 0
   */
  reusedRuns?: number;
}

/** What the metadata says about the machine and the installation: gathered once per `mpx run`. */
export type MachineFacts = Omit<MetadataInput, 'spec' | 'date' | 'plannedRuns' | 'records' | 'reusedRuns'>;

/** The PyTorch installation a torch worker ran on. */
export interface TorchDescription {
  version: string;
  python: string;
  cuda: boolean;
  blas: string;
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
  torch: TorchDescription | null;
  /** `platform release arch`, e.g. `linux 6.8.0 x64`. */
  os: string;
  /** Machines that ran the recorded runs (the records' `host`), sorted; several when shards ran on a cluster. */
  hosts: string[];
  git: Provenance | null;
  spec: { name: string; file: string; sha256: string };
  /** ISO 8601, UTC. */
  date: string;
  /** `reused`: records carried over from an earlier `mpx run` (see `MetadataInput.reusedRuns`). */
  runs: { planned: number; recorded: number; reused: number } & Record<RecordedStatus, number>;
}

export function collectMetadata(input: MetadataInput): RunMetadata {
  const byStatus = Object.fromEntries(RECORDED_STATUSES.map((s) => [s, 0])) as Record<RecordedStatus, number>;
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
    torch: input.torch ? { version: input.torch.version, python: input.torch.python, cuda: input.torch.cuda, blas: input.torch.blas } : null,
    os: `${input.os.platform} ${input.os.release} ${input.os.arch}`,
    hosts: [...new Set(input.records.flatMap((r) => (typeof r.host === 'string' ? [r.host] : [])))].sort(),
    git: input.provenance === null ? null : { ...input.provenance },
    spec: { name: input.spec.name, file: input.spec.file, sha256: input.spec.sha256 },
    date: input.date.toISOString(),
    runs: { planned: input.plannedRuns, recorded: input.records.length, reused: input.reusedRuns ?? 0, ...byStatus },
  };
}

/**
 * Reads a `meta.json` back. Lenient on purpose: metadata only adds context to a diff or a report, so a file from an
 * older or newer mpx, or a broken one, gives what it can (missing fields are empty) and null when it is not a
 * metadata object at all.
 */
export function parseRunMetadata(text: string): RunMetadata | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const strings = (v: unknown): Record<string, string> =>
    isObject(v) ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string')) : {};
  const cpu = isObject(value.cpu) ? value.cpu : {};
  const git = isObject(value.git) ? value.git : null;
  const spec = isObject(value.spec) ? value.spec : {};
  const runs = isObject(value.runs) ? value.runs : {};
  const count = (key: string): number => num(runs[key]) ?? 0;
  return {
    mpxVersion: str(value.mpxVersion) ?? '',
    nodeVersion: str(value.nodeVersion) ?? '',
    tfjsVersions: strings(value.tfjsVersions),
    backends: Array.isArray(value.backends) ? value.backends.filter((b): b is BackendName => typeof b === 'string') : [],
    cpu: { model: str(cpu.model), cores: num(cpu.cores) ?? 0 },
    gpus: Array.isArray(value.gpus)
      ? value.gpus.filter(isObject).map((g) => ({ name: str(g.name) ?? '', driverVersion: str(g.driverVersion), memoryTotalBytes: num(g.memoryTotalBytes) }))
      : [],
    torch: isObject(value.torch) && typeof value.torch.version === 'string'
      ? { version: value.torch.version, python: str(value.torch.python) ?? '', cuda: value.torch.cuda === true, blas: str(value.torch.blas) ?? '' }
      : null,
    os: str(value.os) ?? '',
    hosts: Array.isArray(value.hosts) ? value.hosts.filter((h): h is string => typeof h === 'string') : [],
    git: git !== null && typeof git.commit === 'string' ? { commit: git.commit, dirty: typeof git.dirty === 'boolean' ? git.dirty : null } : null,
    spec: { name: str(spec.name) ?? '', file: str(spec.file) ?? '', sha256: str(spec.sha256) ?? '' },
    date: str(value.date) ?? '',
    runs: {
      planned: count('planned'),
      recorded: count('recorded'),
      reused: count('reused'),
      ...(Object.fromEntries(RECORDED_STATUSES.map((s) => [s, count(s)])) as Record<RecordedStatus, number>),
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
