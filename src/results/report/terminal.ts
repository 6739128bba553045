/**
 * The answer in the terminal, printed after `mpx run` (and by `mpx report`): per spec, each model's peak by policy at
 * each batch size — float32 in bytes, mixed policies as a ratio to it — where a mixed policy saves or costs memory,
 * and the rows that did not finish. Deterministic, at most `width` (100) columns, colour only when asked for (a TTY).
 * Pure: returns lines.
 */
import type { ResultRow } from '../aggregate.js';
import { formatBytes } from '../peak.js';
import { effectOf, formatVerdict, groupLabel, type PeakGroup, type ReportCell, type ReportSummary, rowLabel } from './summary.js';

export interface TerminalSummaryOptions {
  /** ANSI colours: green where a mixed policy saves, red where it costs. @default false */
  color?: boolean;
  /** Longest line. @default 100 */
  width?: number;
  /** Rows that did not finish listed one per line; the rest are counted. @default 5 */
  maxNotOkLines?: number;
}

export const TERMINAL_WIDTH = 100;
const INDENT = '  ';
const GAP = '  ';

export function renderTerminalSummary(summary: ReportSummary, options: TerminalSummaryOptions = {}): string[] {
  const width = options.width ?? TERMINAL_WIDTH;
  const paint = options.color ? colorize : (text: string) => text;
  const lines: string[] = [];
  if (summary.rowCount === 0) return [`${summary.name}: no results yet`];
  lines.push(cut(`${summary.name}: peak memory per cell; float32 in bytes, mixed policies as a ratio to float32`, width));
  for (const source of summary.sources) {
    lines.push(cut(`${INDENT}${source.kind}: ${source.column.name}, ${source.explanation}`, width));
  }
  const withEngine = summary.hasSeveralEngines;
  const labels = summary.groups.map((g) => groupLabel(g, withEngine) + (summary.sources.length > 1 ? ` (${g.source.kind})` : ''));
  const labelWidth = Math.max('model'.length, ...labels.map((l) => l.length));
  const policyWidth = Math.max('policy'.length, ...summary.groups.flatMap((g) => g.policies.map((p) => p.length)));
  summary.groups.forEach((group, i) => lines.push(...renderGroup(group, labels[i]!, labelWidth, policyWidth, width, paint)));
  lines.push(...renderNotOk(summary.notOk, width, options.maxNotOkLines ?? 5));
  return lines;
}

function renderGroup(group: PeakGroup, label: string, labelWidth: number, policyWidth: number, width: number, paint: Paint): string[] {
  const texts = new Map<string, string>();
  for (const policy of group.policies) for (const batch of group.batches) texts.set(`${policy}@${batch}`, cellText(group.cell(policy, batch)));
  const valueWidth = Math.max(...group.batches.map((b) => String(b).length), ...[...texts.values()].map((t) => t.length));
  const lead = INDENT.length + labelWidth + GAP.length + policyWidth;
  const perLine = Math.max(1, Math.floor((width - lead) / (GAP.length + valueWidth)));
  const lines: string[] = [];
  for (let start = 0; start < group.batches.length; start += perLine) {
    const batches = group.batches.slice(start, start + perLine);
    const isLastChunk = start + perLine >= group.batches.length;
    const head = start === 0 ? label : '';
    lines.push(`${INDENT}${head.padEnd(labelWidth)}${GAP}${'batch'.padEnd(policyWidth)}${batches.map((b) => GAP + String(b).padStart(valueWidth)).join('')}`);
    for (const policy of group.policies) {
      const values = batches.map((b) => {
        const text = texts.get(`${policy}@${b}`)!;
        return GAP + paint(text.padStart(valueWidth), group.cell(policy, b));
      });
      const line = `${INDENT}${''.padEnd(labelWidth)}${GAP}${policy.padEnd(policyWidth)}${values.join('')}`;
      const verdict = isLastChunk ? group.verdicts.find((v) => v.policy === policy) : undefined;
      const note = verdict ? formatVerdict(verdict, 'short') : '';
      const visible = lead + batches.length * (GAP.length + valueWidth);
      if (note === '') lines.push(line);
      else if (visible + GAP.length + note.length <= width) lines.push(`${line}${GAP}${note}`);
      else lines.push(line, cut(`${''.padEnd(lead)}${GAP}↳ ${note}`, width));
    }
  }
  return lines;
}

/** `29.88 MB` for float32 (or where there is no float32 to compare with), `0.51×` for a mixed policy, else the status. */
function cellText(cell: ReportCell | undefined): string {
  if (cell === undefined) return '';
  if (cell.peak === null) return cell.row.status === 'ok' ? '—' : SHORT_STATUS[cell.row.status];
  if (cell.row.policy === 'float32' || cell.ratio === null) return formatBytes(cell.peak.bytes);
  return `${cell.ratio.toFixed(2)}×`;
}

/** Statuses in a value column (the list below the table spells them out). */
const SHORT_STATUS: Record<ResultRow['status'], string> = { ok: 'ok', oom: 'oom', failed: 'failed', crashed: 'crashed', timeout: 'timeout', unsupported: 'unsupp.' };

type Paint = (text: string, cell: ReportCell | undefined) => string;

function colorize(text: string, cell: ReportCell | undefined): string {
  if (cell?.ratio === null || cell?.ratio === undefined || cell.row.policy === 'float32') return text;
  const effect = effectOf(cell.ratio);
  if (effect === 'same') return text;
  return `\u001b[${effect === 'saves' ? 32 : 31}m${text}\u001b[39m`;
}

function renderNotOk(rows: readonly ResultRow[], width: number, maxLines: number): string[] {
  if (rows.length === 0) return [];
  const lines = [`${INDENT}not ok: ${rows.length} of the cells (see the status and reason columns)`];
  for (const row of rows.slice(0, maxLines)) {
    const detail = row.status === 'oom' && row.oomReachedBytes !== null ? `reached ${formatBytes(row.oomReachedBytes)}` : (row.reason ?? '');
    lines.push(cut(`${INDENT}${INDENT}${row.status.padEnd(11)} ${rowLabel(row)}${detail === '' ? '' : `  ${detail}`}`, width));
  }
  if (rows.length > maxLines) lines.push(`${INDENT}${INDENT}… and ${rows.length - maxLines} more`);
  return lines;
}

function cut(line: string, width: number): string {
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}
