/**
 * TensorFlow.js for the worker, loaded with `require`. An ESM `import` of this CommonJS package makes Node lex its
 * source and that of every package it re-exports for named exports: ~265 ms per worker process against ~100 ms
 * with `require` (`npm run bench`, per-run overhead probes). Every worker module takes `tf` from here; the
 * namespace below gives the same names in type positions.
 */
import { createRequire } from 'node:module';
import type * as Tfjs from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);

export const tf = require('@tensorflow/tfjs') as typeof Tfjs;

/** Registers the wasm backend (its module registers itself on load). */
export function loadWasmBackend(): void {
  require('@tensorflow/tfjs-backend-wasm');
}

// A namespace merged with the value `tf` gives `tf.Tensor` etc. in type positions, as an ESM namespace import would.
// eslint-disable-next-line @typescript-eslint/no-namespace -- type names only; nothing is emitted
export declare namespace tf {
  type Rank = Tfjs.Rank;
  type DataType = Tfjs.DataType;
  type Tensor<R extends Tfjs.Rank = Tfjs.Rank> = Tfjs.Tensor<R>;
  type Tensor2D = Tfjs.Tensor2D;
  type Tensor3D = Tfjs.Tensor3D;
  type Tensor4D = Tfjs.Tensor4D;
  type Scalar = Tfjs.Scalar;
  type Variable<R extends Tfjs.Rank = Tfjs.Rank> = Tfjs.Variable<R>;
  type TensorInfo = Tfjs.TensorInfo;
  type NamedTensorMap = Tfjs.NamedTensorMap;
  type NamedTensorInfoMap = Tfjs.NamedTensorInfoMap;
  type NamedAttrMap = Tfjs.NamedAttrMap;
  type KernelBackend = Tfjs.KernelBackend;
  type KernelFunc = Tfjs.KernelFunc;
  type KernelConfig = Tfjs.KernelConfig;
}
