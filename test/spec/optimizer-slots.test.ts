import { describe, expect, it } from 'vitest';
import { optimizerSlotBytes, optimizerSlotsPerVariable } from '../../src/spec/optimizer-slots.js';
import type { OptimizerDef } from '../../src/spec/types.js';

describe('optimizer slots from the spec (what both engines create: test/worker/memory.test.ts, test/worker/torch/memory.test.ts)', () => {
  const def = (name: OptimizerDef['name'], extra: Partial<OptimizerDef> = {}): OptimizerDef => ({ name, learningRate: 0.001, momentum: 0.9, ...extra });
  it.each([
    [def('sgd'), 0],
    [def('momentum'), 1],
    [def('adam'), 2],
    [def('adamw', { weightDecay: 0.004 }), 2],
    [def('rmsprop', { momentum: 0, centered: false }), 1],
    [def('rmsprop', { momentum: 0.9, centered: false }), 2],
    [def('rmsprop', { momentum: 0, centered: true }), 2],
    [def('rmsprop', { momentum: 0.9, centered: true }), 3],
  ])('%o keeps %i fp32 slots per variable', (optimizer, slots) => {
    expect(optimizerSlotsPerVariable(optimizer)).toBe(slots);
    expect(optimizerSlotBytes(optimizer, 1000)).toBe(4000 * slots);
  });
});
