/**
 * "Stock wasm": @tensorflow/tfjs-backend-wasm 4.22 as shipped, in a fresh process where mpx's training kernels
 * (src/worker/kernels/wasm-training.ts) were never registered. The parent starts `main.js --child stock`; the child
 * prints one JSON line.
 */
import { execaNode } from 'execa';
import type { StepMeasurement } from './compute.js';
import { presetRun } from './specs.js';

export interface StockResults {
  mlp: StepMeasurement | null;
  /** Why the CNN preset cannot train on stock wasm (first line of the error), or null if it trained. */
  cnnError: string | null;
  cnn: StepMeasurement | null;
}

/** Child side. */
export async function measureStockInThisProcess(): Promise<StockResults> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  const { registerQuantizeKernels } = await import('../worker/precision/quantize.js');
  const { measureSteps } = await import('./compute.js');
  registerQuantizeKernels(); // only mpx's rounding kernel (unused by float32); no training kernels
  if (!(await tf.setBackend('wasm'))) throw new Error('bench: stock wasm did not start');
  await tf.ready();
  const [mlp] = measureSteps([presetRun('mlp', 'float32')], 'wasm (stock)', { warmup: 1, rounds: 1, perRound: 3 });
  let cnn: StepMeasurement | null = null;
  let cnnError: string | null = null;
  try {
    cnn = measureSteps([presetRun('cnn', 'float32')], 'wasm (stock)', { warmup: 1, rounds: 1, perRound: 2 })[0] ?? null;
  } catch (error) {
    cnnError = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
  }
  return { mlp: mlp ?? null, cnn: cnn ?? null, cnnError };
}

/** Parent side: runs the child and parses its answer. */
export async function measureStock(mainFile: string): Promise<StockResults> {
  const child = await execaNode(mainFile, ['--child', 'stock'], { timeout: 120_000 });
  const line = child.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as StockResults;
}
