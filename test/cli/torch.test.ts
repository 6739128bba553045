/**
 * `backend: [wasm, torch]` end to end through the BUILT command line: both engines side by side in one CSV, torch rows
 * with the runtime's own memory figures and nothing modeled, cells the device cannot run recorded as unsupported (and
 * warned about up front), and the clear exit 2 when no Python can import torch. CI installs python3-torch.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTorchPython, type TorchProbe } from '../../src/runner/python.js';
import { parseResultsCsv, type ResultTable } from '../../src/results/table.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const SPEC = `# yaml-language-server: $schema=../schemas/experiment.schema.json
name: engines
seed: 11
data: { kind: synthetic, samples: 256, evalSamples: 64 }
train: { steps: 3, warmupSteps: 1, optimizer: { name: adam, learningRate: 0.01 }, timeoutSeconds: 120 }
models:
  mlp: { preset: mlp, input: [64], hidden: [32], classes: 4 }
matrix:
  backend: [wasm, torch]
  policy: [float32, mixed_bfloat16, mixed_float16]
  batchSize: [16]
`;

let dir: string;
let probe: TorchProbe;
let result: { exitCode?: number; stdout: string; stderr: string };
let table: ResultTable;

async function mpx(args: string[], env: Record<string, string> = {}) {
  const r = await execa(process.execPath, [CLI, ...args], { reject: false, cwd: dir, env: { MPX_DEBUG: '', ...env }, timeout: 240_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
  dir = await mkdtemp(join(tmpdir(), 'mpx-torch-cli-'));
  await writeFile(join(dir, 'engines.yaml'), SPEC);
  const search = await findTorchPython();
  if (search.found === null) throw new Error(`no Python can import torch here: ${JSON.stringify(search.tried)} (CI installs python3-torch)`);
  probe = search.found.probe;
  result = await mpx(['run', 'engines.yaml', '--results-dir', 'out']);
  table = parseResultsCsv(await readFile(join(dir, 'out', 'engines.csv'), 'utf8'), 'engines', 'out/engines.csv');
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('mpx run with backend: [wasm, torch]', () => {
  const row = (backend: string, policy: string) => table.rows.find((r) => r.requestedBackend === backend && r.policy === policy)!;

  it('runs both engines into one CSV: a row per engine and policy, exit 0', () => {
    expect(result.exitCode, result.stderr).toBe(0);
    expect(table.rows.map((r) => `${r.requestedBackend} ${r.policy}`)).toEqual([
      'wasm float32',
      'wasm mixed_bfloat16',
      'wasm mixed_float16',
      'torch float32',
      'torch mixed_bfloat16',
      'torch mixed_float16',
    ]);
    expect(table.rows.filter((r) => r.requestedBackend === 'wasm').every((r) => r.status === 'ok' && r.backends[0] === 'wasm')).toBe(true);
  });

  it('torch rows hold real dtypes and measured peaks; nothing on them is modeled', () => {
    for (const policy of ['float32', 'mixed_bfloat16'] as const) {
      const r = row('torch', policy);
      expect(r, policy).toMatchObject({ status: 'ok', backends: ['torch'], precisions: ['native'], devices: [probe.cuda ? expect.stringMatching(/^cuda/) : 'cpu'] });
      expect(r.peakBytes).toBeGreaterThan(0);
      expect(r.peakModeledBytes).toBeNull();
      expect(r.activationsPeakModeledBytes).toBeNull();
      // 4 bytes per parameter under every policy (fp32 master weights), Adam's two slots 8
      expect(r.paramsBytes).toBe(4 * r.paramCount!);
      expect(r.optimizerBytes).toBe(8 * r.paramCount!);
    }
    expect(row('wasm', 'mixed_bfloat16').precisions).toEqual(['emulated']);
  });

  it('both engines build the same model from the seed: same parameters and, in float32, the same initial loss', () => {
    expect(row('torch', 'float32').paramCount).toBe(row('wasm', 'float32').paramCount);
    expect(row('torch', 'float32').initialLoss).toBeCloseTo(row('wasm', 'float32').initialLoss!, 5);
  });

  it('a policy the device cannot run is an unsupported row with the reason, warned about before anything ran', () => {
    const device = probe.cuda ? 'cuda' : 'cpu';
    const fp16 = row('torch', 'mixed_float16');
    if (probe.policies[device]?.mixed_float16) {
      expect(fp16.status).toBe('ok');
      return;
    }
    expect(fp16).toMatchObject({ status: 'unsupported', peakBytes: null });
    expect(fp16.reason).toMatch(/mixed_float16 needs .* float16 on cpu/);
    const warning = result.stderr.indexOf('warning: 1 torch cell(s) with policy mixed_float16 cannot run on this cpu');
    expect(warning).toBeGreaterThanOrEqual(0);
    expect(warning).toBeLessThan(result.stderr.indexOf('runs from 1 spec'));
  });

  it('mpx plan --json gives every run its whole RunConfig, which the torch worker runs on its own', async () => {
    const plan = await mpx(['plan', '--json', 'engines.yaml']);
    expect(plan.exitCode, plan.stderr).toBe(0);
    const runs = JSON.parse(plan.stdout) as Array<{ backend: string; policy: string; run: { runId: string; model: { layers: unknown[] } } }>;
    const torch = runs.find((r) => r.backend === 'torch' && r.policy === 'float32')!;
    expect(torch.run.model.layers.length).toBeGreaterThan(0);
    await writeFile(join(dir, 'one.json'), JSON.stringify(torch));
    const { python } = (await findTorchPython()).found!;
    const { TORCH_PACKAGE_DIR } = await import('../../src/runner/python.js');
    const standalone = await execa(python, [TORCH_PACKAGE_DIR, '--run', join(dir, 'one.json')], { reject: false, timeout: 120_000 });
    expect(standalone.exitCode, String(standalone.stderr)).toBe(0);
    const outcome = JSON.parse(String(standalone.stdout)) as { status: string; measurements: { initialLoss: number } };
    expect(outcome.status).toBe('ok');
    expect(outcome.measurements.initialLoss).toBeCloseTo(row('torch', 'float32').initialLoss!, 5);
  });
});

describe('mpx run with backend torch and no PyTorch', () => {
  it('exits 2 before anything runs, naming the spec line, what was tried and the install command', async () => {
    const r = await mpx(['run', 'engines.yaml', '--results-dir', 'none'], { MPX_PYTHON: '/nonexistent/python3' });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/engines\.yaml:9:19: backend torch needs a Python that can import torch, and none was found \(\/nonexistent\/python3: not found\)/);
    expect(r.stderr).toMatch(/hint: apt-get install -y --no-install-recommends python3-torch libopenblas0-pthread, or point MPX_PYTHON/);
    expect(await readdir(dir)).not.toContain('none');
  });

  it('mpx validate only warns: the spec itself is valid', async () => {
    const r = await mpx(['validate', 'engines.yaml'], { MPX_PYTHON: '/nonexistent/python3' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('engines.yaml: ok (6 cells, 6 runs)');
    expect(r.stderr).toMatch(/engines\.yaml:9:19: warning: backend torch needs a Python that can import torch/);
  });
});
