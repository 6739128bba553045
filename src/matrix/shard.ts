/**
 * `--shard <index>/<count>`: a deterministic partition of runs over `count` shards (1-based, as `vitest --shard` and
 * `jest --shard`). Runs are ordered by run id (a content hash, so the order does not depend on the matrix's order),
 * then dealt round robin: shard sizes differ by at most one run, and every shard, on any host, computes the same
 * partition from the same runs. Pure.
 */
import { MpxError } from '../errors.js';

/** One shard of `count`: `index` is 1-based. */
export interface Shard {
  index: number;
  count: number;
}

/** Largest shard count accepted: far beyond any array a scheduler takes, small enough to catch a typo. */
export const MAX_SHARDS = 1_000_000;

/** Parses `--shard 2/4`. Throws MpxError USAGE with the expected form. */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = match ? Number(match[1]) : Number.NaN;
  const count = match ? Number(match[2]) : Number.NaN;
  if (!match || count < 1 || count > MAX_SHARDS || index < 1 || index > count) {
    throw new MpxError('USAGE', `--shard must be <index>/<count> with 1 ≤ index ≤ count (1-based), got "${text}"`, {
      hint: 'e.g. --shard 2/4; a Kubernetes Indexed Job: --shard "$((JOB_COMPLETION_INDEX + 1))/4"; a Slurm array 1-4: --shard "$SLURM_ARRAY_TASK_ID/4"',
    });
  }
  return { index, count };
}

export function formatShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/** What identifies a run across specs: its id (a content hash) and the spec it belongs to (two specs may share ids). */
export interface ShardKey {
  runId: string;
  specName: string;
}

/**
 * The 1-based shard of every item, in input order: items sorted by run id (then spec name), the k-th in that order
 * (0-based) going to shard k mod count + 1.
 */
export function assignShards(items: readonly ShardKey[], count: number): number[] {
  const order = items.map((_, i) => i);
  order.sort((a, b) => compareKeys(items[a]!, items[b]!));
  const shards = new Array<number>(items.length);
  for (const [position, item] of order.entries()) shards[item] = (position % count) + 1;
  return shards;
}

/** The items of one shard, in input order. */
export function selectShard<T extends ShardKey>(items: readonly T[], shard: Shard): T[] {
  const shards = assignShards(items, shard.count);
  return items.filter((_, i) => shards[i] === shard.index);
}

function compareKeys(a: ShardKey, b: ShardKey): number {
  if (a.runId !== b.runId) return a.runId < b.runId ? -1 : 1;
  return a.specName < b.specName ? -1 : a.specName > b.specName ? 1 : 0;
}
