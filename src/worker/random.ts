/**
 * Seeded pseudo-random numbers for weights, data and dropout. tfjs initialisers fall back to Math.random (and treat
 * seed 0 as "unseeded"), so mpx draws every random number itself: same seed, same run.
 */

/** mulberry32: small, fast, good enough for initialisation and synthetic data; returns floats in [0, 1). */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box–Muller) from a uniform source. */
export function createNormal(uniform: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u = 1 - uniform(); // (0, 1]: log(0) never happens
    const v = uniform();
    const radius = Math.sqrt(-2 * Math.log(u));
    spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  };
}

/** Derives an independent 32-bit seed for a named stream ("weights", "data", …) so streams do not overlap. */
export function deriveSeed(seed: number, stream: string): number {
  let hash = 2166136261 ^ seed;
  for (let i = 0; i < stream.length; i++) hash = Math.imul(hash ^ stream.charCodeAt(i), 16777619);
  return (hash >>> 0) || 1;
}
