/** `mpx env [--json]`: the versions, backends and devices mpx detects here (what `mpx run` records in meta.json). */
import { collectEnvironment, type Environment } from '../environment.js';

export async function envCommand(options: { json: boolean }): Promise<number> {
  const env = await collectEnvironment({ cwd: process.cwd() });
  process.stdout.write(options.json ? `${JSON.stringify(env, null, 2)}\n` : formatEnvironment(env));
  return 0;
}

/** The human-readable report, one fact per line. Pure. */
export function formatEnvironment(env: Environment): string {
  const lines: string[] = [];
  lines.push(`mpx       ${env.mpxVersion}`);
  lines.push(`node      ${env.nodeVersion} (${env.os.platform} ${env.os.release} ${env.os.arch})`);
  const tfjs = Object.entries(env.tfjsVersions).map(([name, version]) => `${name} ${version}`);
  lines.push(`tfjs      ${tfjs.length === 0 ? 'not installed' : tfjs.join(', ')}`);
  lines.push('backends');
  for (const b of env.backends) {
    const state = b.isInstalled
      ? `available (${b.package} ${b.version ?? '?'})`
      : b.name === 'tensorflow'
        ? 'not installed (npm install @tensorflow/tfjs-node-gpu, or @tensorflow/tfjs-node for CPU only)'
        : 'not installed';
    lines.push(`  ${b.name.padEnd(10)} ${state}`);
  }
  const auto = env.autoBackend === 'tensorflow' ? 'tensorflow (wasm if it fails to load)' : env.autoBackend;
  lines.push(`  auto       → ${auto}`);
  lines.push(`cpu       ${env.cpu.model ?? 'unknown model'}, ${env.cpu.cores} cores`);
  if (env.gpus.length === 0) {
    lines.push(`gpus      none (${env.hasNvidiaSmi ? 'nvidia-smi lists no GPU' : 'nvidia-smi not found'})`);
  } else {
    lines.push('gpus');
    for (const gpu of env.gpus) {
      const memory = gpu.memoryTotalBytes === null ? '' : `, ${(gpu.memoryTotalBytes / 2 ** 30).toFixed(1)} GiB`;
      const driver = gpu.driverVersion === null ? '' : `, driver ${gpu.driverVersion}`;
      lines.push(`  ${gpu.index}: ${gpu.name}${memory}${driver}`);
    }
  }
  lines.push(`git       ${env.git === null ? 'not a git checkout' : `${env.git.commit}${env.git.dirty === true ? ' (dirty: tracked files modified)' : env.git.dirty === null ? ' (dirty: unknown)' : ''}`}`);
  return `${lines.join('\n')}\n`;
}
