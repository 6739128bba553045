/**
 * The facts about this machine and installation that `mpx env` prints and `mpx run` records in `<name>.meta.json`:
 * versions, backends, CPU, GPUs, git state. Gathered without loading tfjs (which takes seconds and, for
 * tfjs-node-gpu, may print CUDA noise): packages are resolved, not imported.
 */
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, cpus, platform, release } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Provenance } from '../results/metadata.js';
import { readProvenance } from './git.js';
import { detectGpus, findTensorflowPackage, type GpuInfo } from '../runner/devices.js';
import type { BackendName } from '../spec/types.js';
import { TFJS_PACKAGES } from '../worker/packages.js';

const require = createRequire(import.meta.url);

/** This package's version (src/cli and dist/cli are both two levels below package.json). */
export const MPX_VERSION = (require('../../package.json') as { version: string }).version;


export interface BackendAvailability {
  name: BackendName;
  /** The npm package providing it, null when none is installed. */
  package: string | null;
  version: string | null;
  isInstalled: boolean;
}

export interface Environment {
  mpxVersion: string;
  /** `process.version`. */
  nodeVersion: string;
  os: { platform: string; release: string; arch: string };
  /** Installed tfjs packages → version. */
  tfjsVersions: Record<string, string>;
  /** In the order `backend: auto` prefers them. */
  backends: BackendAvailability[];
  /** What `backend: auto` picks here (tensorflow only if its package also loads; else wasm). */
  autoBackend: BackendName;
  cpu: { model: string | null; cores: number };
  gpus: GpuInfo[];
  /** Whether an `nvidia-smi` executable is on PATH (no GPUs + no nvidia-smi reads differently from no GPUs). */
  hasNvidiaSmi: boolean;
  git: Provenance | null;
}

/** Installed tfjs packages and their versions; missing ones are left out. */
export function tfjsVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const name of TFJS_PACKAGES) {
    const version = packageVersion(name);
    if (version !== null) versions[name] = version;
  }
  return versions;
}

function packageVersion(name: string): string | null {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}

export function osFacts(): Environment['os'] {
  return { platform: platform(), release: release(), arch: arch() };
}

export interface EnvironmentOptions {
  cwd: string;
  /** Paths whose changes do not make the git tree dirty (the results directory). */
  ignorePaths?: readonly string[];
}

export async function collectEnvironment(options: EnvironmentOptions): Promise<Environment> {
  const versions = tfjsVersions();
  const tensorflow = findTensorflowPackage();
  const backends: BackendAvailability[] = [
    { name: 'tensorflow', package: tensorflow, version: tensorflow === null ? null : (versions[tensorflow] ?? null), isInstalled: tensorflow !== null },
    backendOf('wasm', '@tensorflow/tfjs-backend-wasm', versions),
    backendOf('cpu', '@tensorflow/tfjs-backend-cpu', versions),
  ];
  const [gpus, git] = await Promise.all([detectGpus(), readProvenance(options.cwd, { ignorePaths: options.ignorePaths })]);
  const models = [...new Set(cpus().map((c) => c.model.trim()).filter((m) => m !== ''))];
  return {
    mpxVersion: MPX_VERSION,
    nodeVersion: process.version,
    os: osFacts(),
    tfjsVersions: versions,
    backends,
    autoBackend: tensorflow !== null ? 'tensorflow' : 'wasm',
    cpu: { model: models.length === 0 ? null : models.join(' | '), cores: cpus().length },
    gpus,
    hasNvidiaSmi: isOnPath('nvidia-smi'),
    git,
  };
}

function backendOf(name: BackendName, pkg: string, versions: Record<string, string>): BackendAvailability {
  const version = versions[pkg] ?? null;
  return { name, package: version === null ? null : pkg, version, isInstalled: version !== null };
}

/** Whether an executable named `command` is in one of PATH's directories (with a Windows extension, too). */
export function isOnPath(command: string, path = process.env.PATH ?? ''): boolean {
  const extensions = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE').split(';') : [''];
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    for (const ext of extensions) {
      try {
        accessSync(join(dir, command + ext), constants.X_OK);
        return true;
      } catch {
        // not here
      }
    }
  }
  return false;
}
