/**
 * Chooses and starts the tfjs backend of a worker. `auto` prefers tfjs-node-gpu / tfjs-node (real TensorFlow,
 * GPU when present) > wasm (embedded default, patched so it can train) > cpu (pure JS, last fallback).
 * tfjs-node(-gpu) cannot be installed where libtensorflow cannot be downloaded; then `auto` falls through.
 */
import { loadWasmBackend, tf } from './tfjs.js';
import type { BackendChoice, BackendName } from '../spec/types.js';
import { registerWasmTrainingKernels } from './kernels/wasm-training.js';
import { TENSORFLOW_PACKAGES } from './packages.js';
import { registerGradientFixes } from './kernels/gradient-fixes.js';
import { registerCastKernels } from './memory/policy-cast.js';
import { registerQuantizeKernels } from './precision/quantize.js';


export class BackendUnavailable extends Error {}

loadWasmBackend();

export interface StartedBackend {
  name: BackendName;
  /** The package that provided it, e.g. `@tensorflow/tfjs-node-gpu`; null for the embedded backends. */
  providedBy: string | null;
}

/** Why the `tensorflow` backend could not be loaded, or null if it loaded (and registered itself). */
async function loadTensorflow(): Promise<{ providedBy: string } | { error: string }> {
  const reasons: string[] = [];
  for (const name of TENSORFLOW_PACKAGES) {
    try {
      await import(name);
      if (tf.findBackend('tensorflow')) return { providedBy: name };
      reasons.push(`${name} loaded but registered no 'tensorflow' backend`);
    } catch (error) {
      reasons.push(`${name}: ${firstLine(error)}`);
    }
  }
  return { error: reasons.join('; ') };
}

export async function startBackend(choice: BackendChoice): Promise<StartedBackend> {
  const order: BackendName[] = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  const reasons: string[] = [];
  for (const name of order) {
    let providedBy: string | null = null;
    if (name === 'tensorflow') {
      const loaded = await loadTensorflow();
      if ('error' in loaded) {
        reasons.push(`tensorflow: ${loaded.error}`);
        continue;
      }
      providedBy = loaded.providedBy;
    }
    if (name === 'wasm') registerWasmTrainingKernels();
    registerQuantizeKernels();
    registerCastKernels();
    registerGradientFixes();
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return { name, providedBy };
      }
      reasons.push(`${name}: tf.setBackend returned false`);
    } catch (error) {
      reasons.push(`${name}: ${firstLine(error)}`);
    }
  }
  const hint =
    choice === 'tensorflow'
      ? 'install @tensorflow/tfjs-node-gpu (or tfjs-node) where it can download libtensorflow, or use backend: wasm'
      : 'use backend: cpu';
  throw new BackendUnavailable(`backend ${choice} is not available (${reasons.join('; ')}); ${hint}`);
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}
