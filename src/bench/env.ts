/** The machine and versions a benchmark ran on, printed above its table. */
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, platform, release } from 'node:os';
import { assembleSimdModule } from '../worker/kernels/simd.js';

export interface BenchEnvironment {
  cpu: string;
  cores: number;
  platform: string;
  node: string;
  v8: string;
  tfjs: Record<string, string>;
  /** Whether this Node validates WebAssembly SIMD (mpx's SIMD loops run, else their JS fallbacks). */
  wasmSimd: boolean;
  /** 1-minute load average when the benchmark started: above ~0.5 other processes compete for the cores. */
  loadAverage: number;
  date: string;
}

const TFJS_PACKAGES = ['@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu'];

export function describeEnvironment(): BenchEnvironment {
  const require = createRequire(import.meta.url);
  const tfjs: Record<string, string> = {};
  for (const name of TFJS_PACKAGES) {
    try {
      tfjs[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      tfjs[name] = 'missing';
    }
  }
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    platform: `${platform()} ${release()}`,
    node: process.version,
    v8: process.versions.v8,
    tfjs,
    wasmSimd: WebAssembly.validate(assembleSimdModule()),
    loadAverage: loadavg()[0] ?? 0,
    date: new Date().toISOString(),
  };
}
