/**
 * Which planned runs `mpx run` starts: the `--filter` subset, minus the runs whose result is already recorded in
 * `<results-dir>/<name>.runs.jsonl` (resume, like Guild's `--needed`), unless `--force` / `--retry-failed` say
 * otherwise. Pure: the caller reads the stored records.
 *
 * Run ids are content hashes of the resolved cell and the repeat index (`matrix/run-id.ts`), so "already recorded"
 * means "the same model, data, training settings, policy, batch, accumulation, seed, repeat and requested backend
 * already ran" — editing a spec re-runs exactly the cells whose resolved config changed.
 */
import { MpxError } from '../errors.js';
import type { Plan, RunConfig } from '../matrix/types.js';
import { FINISHED_STATUSES, type StoredRecord } from '../runner/protocol.js';
import { didYouMean } from '../util/did-you-mean.js';

/** Keys `--filter` accepts, as `mpx plan --json` names them; snake_case (the CSV's column names) works too. */
export const FILTER_KEYS = ['model', 'batchSize', 'microBatchSize', 'policy', 'accumulationSteps', 'backend', 'cellId'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

const SNAKE_CASE: Record<string, FilterKey> = {
  batch_size: 'batchSize',
  micro_batch_size: 'microBatchSize',
  accumulation_steps: 'accumulationSteps',
  cell_id: 'cellId',
  requested_backend: 'backend',
};

/**
 * Accepted values per key: a run matches when, for every key named, its value is one of that key's values.
 * Different keys are AND-ed; values of one key (`policy=a|b`, or the key repeated in one or several `--filter`s) are
 * OR-ed.
 */
export type RunFilter = ReadonlyMap<FilterKey, ReadonlySet<string>>;

/** Parses every `--filter` argument (`key=value[|value][,key=value]`) into one filter. Throws MpxError USAGE. */
export function parseFilters(args: readonly string[]): RunFilter {
  const filter = new Map<FilterKey, Set<string>>();
  for (const arg of args) {
    for (const pair of arg.split(',')) {
      const trimmed = pair.trim();
      const eq = trimmed.indexOf('=');
      if (eq <= 0 || eq === trimmed.length - 1) {
        throw new MpxError('USAGE', `--filter ${JSON.stringify(arg)}: expected key=value, got ${JSON.stringify(trimmed)}`, {
          hint: `e.g. --filter policy=mixed_float16,model=cnn (keys: ${FILTER_KEYS.join(', ')})`,
        });
      }
      const key = toFilterKey(trimmed.slice(0, eq).trim());
      const values = filter.get(key) ?? new Set<string>();
      for (const value of trimmed.slice(eq + 1).split('|')) {
        if (value.trim() === '') throw new MpxError('USAGE', `--filter ${JSON.stringify(arg)}: empty value for ${key}`);
        values.add(value.trim());
      }
      filter.set(key, values);
    }
  }
  return filter;
}

function toFilterKey(name: string): FilterKey {
  if ((FILTER_KEYS as readonly string[]).includes(name)) return name as FilterKey;
  const snake = SNAKE_CASE[name];
  if (snake !== undefined) return snake;
  const all = [...FILTER_KEYS, ...Object.keys(SNAKE_CASE)];
  throw new MpxError('USAGE', `--filter: unknown key "${name}" (keys: ${FILTER_KEYS.join(', ')})`, {
    hint: didYouMean(name, all),
  });
}

/** The value of `key` for one run, as text (numbers in plain digits). */
export function runValue(run: RunConfig, key: FilterKey): string {
  switch (key) {
    case 'model':
      return run.model.name;
    case 'policy':
      return run.policy;
    case 'backend':
      return run.backend;
    case 'cellId':
      return run.cellId;
    default:
      return String(run[key]);
  }
}

function normalise(key: FilterKey, value: string): string {
  // `batchSize=064` means 64; anything that is not a whole number is compared as written (and then matches nothing).
  if (key === 'batchSize' || key === 'microBatchSize' || key === 'accumulationSteps') {
    return /^\d+$/.test(value) ? String(Number(value)) : value;
  }
  return value;
}

export function matchesFilter(filter: RunFilter, run: RunConfig): boolean {
  for (const [key, values] of filter) {
    const value = runValue(run, key);
    if (![...values].some((v) => normalise(key, v) === value)) return false;
  }
  return true;
}

/**
 * Throws MpxError USAGE when a filter value matches no run of any plan (a typo would otherwise silently run
 * nothing), with the values that exist and a did-you-mean, or when the filter as a whole matches no run.
 */
export function assertFilterMatches(filter: RunFilter, plans: readonly Plan[]): void {
  if (filter.size === 0) return;
  const runs = plans.flatMap((p) => p.runs);
  for (const [key, values] of filter) {
    const existing = [...new Set(runs.map((run) => runValue(run, key)))];
    for (const value of values) {
      if (existing.includes(normalise(key, value))) continue;
      throw new MpxError('USAGE', `--filter ${key}=${value} matches no run (${key} values: ${existing.join(', ')})`, {
        hint: didYouMean(value, existing, (match) => `${key}=${match}`),
      });
    }
  }
  if (!runs.some((run) => matchesFilter(filter, run))) {
    const text = [...filter].map(([key, values]) => `${key}=${[...values].join('|')}`).join(',');
    throw new MpxError('USAGE', `--filter ${text} matches no run: each value exists, but no cell has them all`, {
      hint: 'check with mpx plan, or loosen the filter',
    });
  }
}

export interface SelectOptions {
  filter: RunFilter;
  /** Re-run matching runs even when their result is recorded. */
  force: boolean;
  /** Re-run matching runs whose recorded status is failed, timeout or crashed. */
  retryFailed: boolean;
  /** `--shard`: whether a run belongs to this shard (the partition is of the filtered runs, before resume). @default all */
  isInShard?: (run: RunConfig) => boolean;
}

export interface RunSelection {
  /** Runs to start now, in plan order. */
  toRun: RunConfig[];
  /**
   * The stored records of planned runs (the latest per run id, `cellIndex` set to the cell's current position): the
   * results to write alongside the new ones. A record is kept even when its run is about to re-run, so an
   * interrupted re-run loses nothing; the new record replaces it when it arrives.
   */
  stored: StoredRecord[];
  /** Planned runs that match the filter (and belong to the shard). */
  selected: number;
  /** Selected runs not started because their result is recorded. */
  reused: number;
  /** Of `reused`: records that are failed, timed out or crashed (kept because `--retry-failed` was not given). */
  reusedFailed: number;
  /** Stored records of runs no longer in the plan: left out of the rewritten files. */
  stale: number;
}

/** Decides what to run for one spec; see the module comment. */
export function selectRuns(plan: Plan, storedRecords: readonly StoredRecord[], options: SelectOptions): RunSelection {
  const planned = new Map(plan.runs.map((run) => [run.runId, run]));
  const latest = new Map<string, StoredRecord>();
  let stale = 0;
  for (const record of storedRecords) {
    const run = planned.get(record.runId);
    if (run === undefined) {
      stale += 1;
      continue;
    }
    latest.set(record.runId, record.cellIndex === run.cellIndex ? record : { ...record, cellIndex: run.cellIndex });
  }

  const toRun: RunConfig[] = [];
  let selected = 0;
  let reused = 0;
  let reusedFailed = 0;
  for (const run of plan.runs) {
    if (!matchesFilter(options.filter, run) || options.isInShard?.(run) === false) continue;
    selected += 1;
    const record = latest.get(run.runId);
    const isFinished = record !== undefined && FINISHED_STATUSES.has(record.status);
    if (record === undefined || options.force || (!isFinished && options.retryFailed)) {
      toRun.push(run);
    } else {
      reused += 1;
      if (!isFinished) reusedFailed += 1;
    }
  }
  return { toRun, stored: [...latest.values()], selected, reused, reusedFailed, stale };
}
