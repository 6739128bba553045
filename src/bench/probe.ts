/**
 * Child entry of the benchmark's process measurements (`node dist/bench/probe.js <what>`): each probe does one
 * thing in a fresh Node process and prints one JSON line. It imports nothing at the top, so what it measures is
 * only what it loads.
 *
 * - `noop`: nothing (Node start and exit).
 * - `import:tfjs`: `@tensorflow/tfjs` and the wasm backend with ESM `import`, as the worker loads them today.
 * - `require:tfjs`: the same two packages with `require` (no named-export lexing of their CommonJS sources).
 * - `import:execa`: the worker's IPC library.
 * - `backend:auto`: the worker's `backend.js` (its imports), then `startBackend('auto')` (wasm init).
 * - `matmul <startAtEpochMs> <reps>`: wasm matmuls of the MLP's first layer, started at a given time, for the
 *   machine's 1-vs-2-process ceiling.
 */
const startedMs = performance.now();

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t = performance.now();
  const value = await fn();
  return [value, performance.now() - t];
}

async function main(): Promise<Record<string, unknown>> {
  const [what, ...args] = process.argv.slice(2);
  switch (what) {
    case 'noop':
      return {};
    case 'import:tfjs':
      return {
        importMs: (
          await timed(async () => {
            await import('@tensorflow/tfjs');
            await import('@tensorflow/tfjs-backend-wasm');
          })
        )[1],
      };
    case 'require:tfjs': {
      const { createRequire } = await import('node:module');
      const require = createRequire(import.meta.url);
      return {
        importMs: (
          await timed(() => {
            require('@tensorflow/tfjs');
            require('@tensorflow/tfjs-backend-wasm');
          })
        )[1],
      };
    }
    case 'import:execa':
      return { importMs: (await timed(() => import('execa')))[1] };
    case 'backend:auto': {
      const [backend, importMs] = await timed(() => import('../worker/backend.js'));
      const [started, initMs] = await timed(() => backend.startBackend('auto'));
      return { importMs, initMs, backend: started.name };
    }
    case 'matmul': {
      const tf = await import('@tensorflow/tfjs-core');
      await import('@tensorflow/tfjs-backend-wasm');
      await tf.setBackend('wasm');
      const startAt = Number(args[0]);
      const reps = Number(args[1]);
      const a = tf.randomUniform([128, 784]);
      const b = tf.randomUniform([784, 512]);
      tf.matMul(a, b).dispose();
      while (Date.now() < startAt) await new Promise((resolve) => setTimeout(resolve, 1));
      const t = performance.now();
      for (let i = 0; i < reps; i++) tf.matMul(a, b).dispose();
      return { computeMs: performance.now() - t };
    }
    default:
      throw new Error(`probe: unknown probe ${String(what)}`);
  }
}

main().then(
  (result) => {
    process.stdout.write(`${JSON.stringify({ ...result, startedMs, totalMs: performance.now() })}\n`);
  },
  (error: unknown) => {
    process.stderr.write(`probe: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
