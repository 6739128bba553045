/**
 * The npm packages behind the tfjs backends. A module of its own, without imports, so that the parent (which must
 * not load tfjs) and the worker read the same list.
 */

/** Packages that provide the `tensorflow` backend, in order of preference (the first is the GPU build). */
export const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/** The tfjs packages whose versions decide the numbers (recorded in every meta.json). */
export const TFJS_PACKAGES = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', ...TENSORFLOW_PACKAGES] as const;
