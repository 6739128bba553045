/**
 * Peak memory vs batch size as a Mermaid `xychart-beta` block, which GitHub renders in Markdown files and comments.
 * GitHub's Mermaid draws no legend and no gaps in a line, so: one line per policy in a fixed colour
 * (`plotColorPalette`, first colour = first line) that the text names with a matching square, only batch sizes where
 * every charted policy has a peak (the cells left out are listed under the chart), and every string from a spec or a
 * results file passed through `mermaidText`. Pure.
 */
import type { Policy } from '../../spec/types.js';
import type { CapacityRow } from '../capacity.js';
import { formatBytes } from '../peak.js';
import { mermaidText } from './escape.js';
import { groupLabel, type PeakGroup } from './summary.js';

/** One colour per policy, the same in the HTML report's charts. */
export const POLICY_COLORS: Readonly<Record<Policy, string>> = { float32: '#2563eb', mixed_float16: '#ea580c', mixed_bfloat16: '#16a34a' };
export const BUDGET_COLOR = '#dc2626';
/** The squares that name the colours in Markdown text (GitHub renders emoji everywhere). */
export const POLICY_SQUARES: Readonly<Record<Policy, string>> = { float32: '🟦', mixed_float16: '🟧', mixed_bfloat16: '🟩' };
export const BUDGET_SQUARE = '🟥';

/** The budget line is drawn only when it is at most this many times the chart's largest peak (else it flattens it). */
export const BUDGET_DRAW_FACTOR = 3;

export interface MermaidChart {
  /** The fenced block; null when fewer than two batch sizes have a peak under every charted policy. */
  block: string | null;
  /** The charted policies, in line order. */
  policies: Policy[];
  hasBudgetLine: boolean;
  /** Cells of the group that the chart does not show, and why. */
  leftOut: string[];
  /** [hidden, on top]: a line drawn exactly under a later one (equal peaks at every charted batch size). */
  overlaps: Array<[Policy, Policy]>;
}

export function mermaidPeakChart(group: PeakGroup, options: { withEngine: boolean; budgetBytes: number | null }): MermaidChart {
  const policies = group.policies.filter((p) => group.batches.some((b) => group.cell(p, b)?.peak));
  const batches = group.batches.filter((b) => policies.every((p) => group.cell(p, b)?.peak));
  const leftOut: string[] = [];
  for (const policy of group.policies) {
    for (const batch of group.batches) {
      const cell = group.cell(policy, batch);
      if (cell === undefined || (batches.includes(batch) && policies.includes(policy))) continue;
      const why = cell.peak !== null ? 'another policy has no peak at this batch size' : cell.row.status === 'oom' && cell.row.oomReachedBytes !== null ? `oom (reached ${formatBytes(cell.row.oomReachedBytes)})` : cell.row.status;
      leftOut.push(`bs=${batch} ${policy}: ${why}`);
    }
  }
  if (batches.length < 2 || policies.length === 0) return { block: null, policies: [], hasBudgetLine: false, leftOut, overlaps: [] };
  const values = new Map(policies.map((p) => [p, batches.map((b) => megabytes(group.cell(p, b)!.peak!.bytes)).join(', ')]));
  const overlaps: Array<[Policy, Policy]> = [];
  policies.forEach((p, i) => {
    const above = policies.slice(i + 1).reverse().find((q) => values.get(q) === values.get(p));
    if (above !== undefined) overlaps.push([p, above]);
  });
  const maxBytes = Math.max(...policies.flatMap((p) => batches.map((b) => group.cell(p, b)!.peak!.bytes)));
  const budget = options.budgetBytes;
  const hasBudgetLine = budget !== null && budget <= BUDGET_DRAW_FACTOR * maxBytes;
  const palette = [...policies.map((p) => POLICY_COLORS[p]), ...(hasBudgetLine ? [BUDGET_COLOR] : [])].join(', ');
  const lines = [
    '```mermaid',
    `%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "${palette}"}}}}%%`,
    'xychart-beta',
    `  title "${mermaidText(`${groupLabel(group, options.withEngine)}, peak ${group.source.kind}`)}"`,
    `  x-axis "batch size" [${batches.map((b) => `"${b}"`).join(', ')}]`,
    `  y-axis "peak MB (${group.source.kind})"`,
    ...policies.map((p) => `  line [${values.get(p)}]`),
    ...(hasBudgetLine ? [`  line [${batches.map(() => megabytes(budget)).join(', ')}]`] : []),
    '```',
  ];
  return { block: lines.join('\n'), policies, hasBudgetLine, leftOut, overlaps };
}

/** Bytes as MB (10⁶) with at most three decimals, plain digits. */
function megabytes(bytes: number): string {
  return String(Math.round(bytes / 1e3) / 1e3);
}

/**
 * The largest batch that fits, one bar per search (`cnn f32`, `cnn bf16`, ...), as a Mermaid bar chart; null when no
 * search found one. Bars of one series share a colour in Mermaid, so the categories name model, policy and, when
 * they vary, accumulation and engine.
 */
export function mermaidCapacityChart(rows: readonly CapacityRow[]): string | null {
  const found = rows.filter((r) => r.maxBatchSize !== null);
  if (found.length === 0) return null;
  const varies = (key: (r: CapacityRow) => unknown) => new Set(rows.map(key)).size > 1;
  const [hasAcc, hasEngine] = [varies((r) => r.accumulationSteps), varies((r) => r.requestedBackend)];
  const label = (r: CapacityRow) =>
    mermaidText(`${r.model} ${SHORT_POLICY[r.policy]}${hasAcc ? ` acc=${r.accumulationSteps}` : ''}${hasEngine ? ` ${r.requestedBackend}` : ''}`, 30);
  return [
    '```mermaid',
    `%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "${POLICY_COLORS.mixed_bfloat16}"}}}}%%`,
    'xychart-beta',
    `  title "${mermaidText(`largest batch under ${[...new Set(rows.map((r) => formatBytes(r.budgetBytes)))].join(' / ')} (${[...new Set(rows.map((r) => r.metricKind ?? 'unknown'))].join(' / ')} peak)`)}"`,
    `  x-axis [${found.map((r) => `"${label(r)}"`).join(', ')}]`,
    '  y-axis "batch size"',
    `  bar [${found.map((r) => r.maxBatchSize).join(', ')}]`,
    '```',
  ].join('\n');
}

const SHORT_POLICY: Readonly<Record<Policy, string>> = { float32: 'f32', mixed_float16: 'f16', mixed_bfloat16: 'bf16' };
