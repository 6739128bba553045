/** `mpx env [--json]`: the versions, backends and devices mpx detects here (what `mpx run` records in meta.json). */
import { findTorchPython, TORCH_INSTALL_HINT, type TorchPythonSearch } from '../../runner/python.js';
import { POLICIES } from '../../spec/types.js';
import { collectEnvironment, type Environment } from '../environment.js';

export async function envCommand(options: { json: boolean }): Promise<number> {
  const [env, torch] = await Promise.all([collectEnvironment({ cwd: process.cwd() }), findTorchPython()]);
  process.stdout.write(options.json ? `${JSON.stringify({ ...env, torch }, null, 2)}\n` : formatEnvironment(env, torch));
  return 0;
}

/** The human-readable report, one fact per line. Pure. */
export function formatEnvironment(env: Environment, torch: TorchPythonSearch): string {
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
  lines.push(...formatTorch(torch));
  const auto = env.autoBackend === 'tensorflow' ? 'tensorflow (wasm if it fails to load)' : env.autoBackend;
  lines.push(`  auto       → ${auto}; never torch (chosen by name only)`);
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

/** The torch backend's lines: the Python, PyTorch, CUDA, BLAS and the policies each device runs; or why it is missing. */
function formatTorch(torch: TorchPythonSearch): string[] {
  if (torch.found === null) {
    const tried = torch.tried.map((t) => `${t.python}: ${t.reason}`).join('; ');
    return [`  ${'torch'.padEnd(10)} not found (${tried}); ${TORCH_INSTALL_HINT}, or set MPX_PYTHON`];
  }
  const { python, probe } = torch.found;
  const cuda = probe.cuda ? `CUDA ${probe.cudaVersion ?? '?'} (${probe.cudaDevices.map((d) => d.name).join(', ')})` : 'no CUDA';
  const lines = [`  ${'torch'.padEnd(10)} available (PyTorch ${probe.torch} at ${python}, Python ${probe.python.version}; ${cuda}; BLAS ${probe.blas})`];
  for (const device of ['cpu', 'cuda'] as const) {
    const policies = probe.policies[device];
    if (policies === null) continue;
    const cannot = POLICIES.filter((p) => !policies[p]).map((p) => `${p} not: ${probe.reasons[device]?.[p] ?? 'unsupported'}`);
    lines.push(`             on ${device}: ${POLICIES.filter((p) => policies[p]).join(', ')}${cannot.length > 0 ? `; ${cannot.join('; ')}` : ''}`);
  }
  return lines;
}
