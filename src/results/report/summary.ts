/**
 * What a report says, as data: the rows of one spec grouped into the comparisons people make — per model, engine and
 * accumulation setting, the planning peak (`peak.ts`) of each policy at each batch size, its ratio to float32, where
 * a mixed policy starts or stops saving memory, and the rows that did not finish. The terminal summary, the Markdown
 * and the HTML report all render this one structure. Pure.
 */
import type { ResultRow } from '../aggregate.js';
import { formatCellLabel } from '../../matrix/label.js';
import { POLICIES, type BackendChoice, type Policy } from '../../spec/types.js';
import { peakSourceOf, planningPeak, type PeakSource, type PlanningPeak } from '../peak.js';

/** A mixed peak within ±0.5 % of float32's is "the same": the rounding of a few scalars, not a saving. */
export const SAME_TOLERANCE = 0.005;

export interface ReportCell {
  row: ResultRow;
  peak: PlanningPeak | null;
  /** peak ÷ the float32 peak at the same batch size in the same group; null without both. */
  ratio: number | null;
}

/** What a mixed policy does to the peak over a run of consecutive batch sizes. */
export type Effect = 'saves' | 'costs' | 'same';

export interface EffectSegment {
  effect: Effect;
  /** Batch sizes of the segment, ascending (consecutive among the group's batches with both peaks). */
  batches: number[];
  /** The ratio furthest from 1 in the segment, and its batch size. */
  extreme: { ratio: number; batchSize: number };
}

export interface PolicyVerdict {
  policy: Policy;
  segments: EffectSegment[];
  /** True when the policy has a ratio at every batch size of its group (none failed, ran out of memory, ...). */
  isComplete: boolean;
  /** Batch sizes where float32 ran out of memory and this policy has a peak: the capacity mixed precision buys. */
  fitsWhereFloat32Oom: number[];
}

/** One comparison: a model on one engine with one accumulation setting, every policy at every batch size. */
export interface PeakGroup {
  model: string;
  requestedBackend: BackendChoice;
  /** The backends that ran its rows (`wasm`), or the requested one when none ran. */
  engine: string;
  accumulationSteps: number;
  /** Where its peaks come from (one engine per group, so one kind). */
  source: PeakSource;
  /** Ascending. */
  batches: number[];
  /** In POLICIES order. */
  policies: Policy[];
  /** Mixed policies compared with float32 (empty when the group has no float32 peak). */
  verdicts: PolicyVerdict[];
  cell(policy: Policy, batchSize: number): ReportCell | undefined;
}

export interface ReportSummary {
  name: string;
  groups: PeakGroup[];
  /** Rows whose status is not ok: crashed, timeout, failed, oom, unsupported, each in row order. */
  notOk: ResultRow[];
  /** The sources used by the groups, unique, measured first. */
  sources: PeakSource[];
  /** True when the spec's rows ran on more than one engine (labels then name it). */
  hasSeveralEngines: boolean;
  rowCount: number;
}

/** Rows that did not finish, most in need of attention first (a stable sort keeps row order within a status). */
const NOT_OK_ORDER: readonly string[] = ['crashed', 'timeout', 'failed', 'oom', 'unsupported'];

export function summarizeResults(name: string, rows: readonly ResultRow[]): ReportSummary {
  const byKey = new Map<string, ResultRow[]>();
  for (const row of rows) {
    const key = `${row.model}\u0000${row.requestedBackend}\u0000${row.accumulationSteps}`;
    const list = byKey.get(key);
    if (list) list.push(row);
    else byKey.set(key, [row]);
  }
  const groups = [...byKey.values()].map(buildGroup);
  const engines = new Set(groups.map((g) => g.engine));
  const sources = [...new Map(groups.map((g) => [g.source.column.name, g.source])).values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'measured' ? -1 : 1));
  const notOk = rows.filter((r) => r.status !== 'ok').sort((a, b) => NOT_OK_ORDER.indexOf(a.status) - NOT_OK_ORDER.indexOf(b.status));
  return { name, groups, notOk, sources, hasSeveralEngines: engines.size > 1, rowCount: rows.length };
}

function buildGroup(rows: ResultRow[]): PeakGroup {
  const first = rows[0]!;
  const cells = new Map<string, ReportCell>();
  const keyOf = (policy: Policy, batchSize: number) => `${policy}@${batchSize}`;
  for (const row of rows) cells.set(keyOf(row.policy, row.batchSize), { row, peak: planningPeak(row), ratio: null });
  const batches = [...new Set(rows.map((r) => r.batchSize))].sort((a, b) => a - b);
  const policies = POLICIES.filter((p) => rows.some((r) => r.policy === p));
  for (const batch of batches) {
    const base = cells.get(keyOf('float32', batch))?.peak;
    if (!base || base.bytes <= 0) continue;
    for (const policy of policies) {
      const cell = cells.get(keyOf(policy, batch));
      if (cell?.peak) cell.ratio = cell.peak.bytes / base.bytes;
    }
  }
  const verdicts = policies
    .filter((p) => p !== 'float32')
    .map((policy) => {
      const points = batches.flatMap((b) => ratioAt(cells.get(keyOf(policy, b)), b));
      const fitsWhereFloat32Oom = batches.filter((b) => cells.get(keyOf('float32', b))?.row.status === 'oom' && cells.get(keyOf(policy, b))?.peak);
      return { policy, segments: segmentsOf(points), isComplete: points.length === batches.length, fitsWhereFloat32Oom };
    })
    .filter((v) => v.segments.length > 0 || v.fitsWhereFloat32Oom.length > 0);
  const engines = [...new Set(rows.flatMap((r) => r.backends))].sort();
  return {
    model: first.model,
    requestedBackend: first.requestedBackend,
    engine: engines.length > 0 ? engines.join('|') : first.requestedBackend,
    accumulationSteps: first.accumulationSteps,
    source: peakSourceOf(rows.find((r) => r.backends.length > 0) ?? first),
    batches,
    policies,
    verdicts,
    cell: (policy, batchSize) => cells.get(keyOf(policy, batchSize)),
  };
}

function ratioAt(cell: ReportCell | undefined, batchSize: number): Array<{ batchSize: number; ratio: number }> {
  return cell?.ratio === null || cell?.ratio === undefined ? [] : [{ batchSize, ratio: cell.ratio }];
}

export function effectOf(ratio: number): Effect {
  if (ratio < 1 - SAME_TOLERANCE) return 'saves';
  if (ratio > 1 + SAME_TOLERANCE) return 'costs';
  return 'same';
}

function segmentsOf(points: ReadonlyArray<{ batchSize: number; ratio: number }>): EffectSegment[] {
  const segments: EffectSegment[] = [];
  for (const { batchSize, ratio } of points) {
    const effect = effectOf(ratio);
    const last = segments.at(-1);
    if (last?.effect === effect) {
      last.batches.push(batchSize);
      if (Math.abs(ratio - 1) > Math.abs(last.extreme.ratio - 1)) last.extreme = { ratio, batchSize };
    } else {
      segments.push({ effect, batches: [batchSize], extreme: { ratio, batchSize } });
    }
  }
  return segments;
}

/** `wide-mlp acc=1`, with the engine when the spec ran on several (`wide-mlp acc=1 torch`). */
export function groupLabel(group: PeakGroup, withEngine: boolean): string {
  const label = `${group.model} acc=${group.accumulationSteps}`;
  return withEngine ? `${label} ${group.engine}` : label;
}

/** A row named as everywhere else (progress lines, diffs): `cnn bs=512 mixed_float16 acc=1`. */
export function rowLabel(row: ResultRow): string {
  return formatCellLabel({ model: row.model, batchSize: row.batchSize, policy: row.policy, accumulationSteps: row.accumulationSteps, backend: row.requestedBackend });
}

/** `8–128` for several batch sizes, `512` for one. */
export function formatBatchRange(batches: readonly number[]): string {
  return batches.length === 1 ? String(batches[0]) : `${batches[0]}–${batches.at(-1)}`;
}

/** `+5.3%`, `−49%`, `±0%`: the change a ratio means, two significant digits at most one decimal. */
export function formatRatioChange(ratio: number): string {
  const pct = (ratio - 1) * 100;
  const rounded = Math.abs(pct) >= 10 ? Math.round(pct) : Math.round(pct * 10) / 10;
  if (rounded === 0) return '±0%';
  return `${rounded > 0 ? '+' : '−'}${Math.abs(rounded)}%`;
}

/**
 * A verdict in words, deterministic. `long`: `more memory at 8–128 (up to +5.3% at 8), less at 512 (−0.7%)`;
 * `short` (terminal): `costs 8–128, saves 512`.
 */
export function formatVerdict(verdict: PolicyVerdict, style: 'long' | 'short' = 'long'): string {
  const fits = verdict.fitsWhereFloat32Oom;
  if (style === 'short') {
    const fitsText = fits.length > 0 ? [`fits ${formatBatchRange(fits)} (f32 oom)`] : [];
    if (verdict.isComplete && verdict.segments.length === 1) return `${verdict.segments[0]!.effect === 'same' ? 'same as float32' : verdict.segments[0]!.effect} at every batch size`;
    return [...verdict.segments.map((s) => `${s.effect} ${formatBatchRange(s.batches)}`), ...fitsText].join(', ');
  }
  const only = verdict.segments.length === 1 ? verdict.segments[0]! : null;
  const extreme = (s: EffectSegment): string =>
    s.batches.length > 1 ? `up to ${formatRatioChange(s.extreme.ratio)} at ${s.extreme.batchSize}` : formatRatioChange(s.extreme.ratio);
  const fitsText = fits.length > 0 ? [`fits at ${fits.join(', ')}, where float32 ran out of memory`] : [];
  if (verdict.isComplete && only !== null) {
    return only.effect === 'same' ? 'the same peak as float32 at every batch size' : `${LONG_WORDS[only.effect]} memory at every batch size (${extreme(only)})`;
  }
  const segments = verdict.segments.map((s, i) => {
    const what = s.effect === 'same' ? 'the same as float32' : i === 0 ? `${LONG_WORDS[s.effect]} memory` : LONG_WORDS[s.effect];
    return `${what} at ${formatBatchRange(s.batches)}${s.effect === 'same' ? '' : ` (${extreme(s)})`}`;
  });
  return [...segments, ...fitsText].join(', ');
}

const LONG_WORDS: Readonly<Record<Exclude<Effect, 'same'>, string>> = { saves: 'less', costs: 'more' };
