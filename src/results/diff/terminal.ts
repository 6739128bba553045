/** `mpx diff`'s default output: aligned plain-text tables for a terminal or a CI log (no colour, no control codes). */
import { type DiffResult, isRowChanged, type MetricDiff, type RowDiff, shownChanges, type TableDiff } from './compare.js';
import { formatChange, formatNoiseBand, plural } from './format.js';

export interface TerminalDiffOptions {
  /** Also list unchanged metrics of compared cells. @default false */
  showAll?: boolean;
}

export function renderDiffTerminal(result: DiffResult, options: TerminalDiffOptions = {}): string {
  const out: string[] = [`mpx diff: ${result.base} → ${result.head}`, ''];
  const failing = new Map(result.failures.map((f) => [`${f.table}\u0000${f.cell}\u0000${f.metric}`, f.rule]));
  for (const table of result.tables) out.push(...renderTable(table, failing, options), '');

  const s = result.summary;
  const parts = [`${plural(s.cellsCompared, 'cell')} compared in ${plural(s.tables, 'spec')}`, `${s.cellsChanged} changed`, `${plural(s.metricsNoise, 'value')} within noise`];
  if (s.cellsAdded > 0) parts.push(`${s.cellsAdded} added`);
  if (s.cellsRemoved > 0) parts.push(`${s.cellsRemoved} removed`);
  if (s.cellsConfigChanged > 0) parts.push(`${s.cellsConfigChanged} with a changed config`);
  out.push(parts.join(' · '));
  if (result.failures.length > 0) {
    out.push(`${plural(result.failures.length, 'threshold')} exceeded:`);
    for (const f of result.failures) out.push(`  ${f.rule}: ${f.table} ${f.cell}: ${f.baseText || '—'} → ${f.headText || '—'} (${f.change})`);
  }
  return `${out.join('\n')}\n`;
}

function renderTable(table: TableDiff, failing: ReadonlyMap<string, string>, options: TerminalDiffOptions): string[] {
  const side = (s: TableDiff['base']) => (s === null ? '' : `${s.source}${s.commit ? ` (${s.commit.slice(0, 7)}${s.isDirty ? ', dirty' : ''})` : ''}`);
  if (table.status === 'added') return [`${table.name}: new, ${plural(table.added.length, 'cell')} in ${side(table.head)}`];
  if (table.status === 'removed') return [`${table.name}: removed (${plural(table.removed.length, 'cell')} in ${side(table.base)})`];

  const out = [`${table.name}: ${side(table.base)} → ${side(table.head)}`];
  if (table.environment.length > 0) {
    out.push(`  different environment: ${table.environment.map((e) => `${e.field} ${e.base} → ${e.head}`).join('; ')}`);
    out.push('  (timing and process-memory changes across machines are not comparable)');
  }
  const lines: string[][] = [];
  for (const r of table.rows) {
    if (isRowChanged(r)) {
      for (const info of r.info) {
        const reason = info.column === 'status' && r.headReason ? r.headReason : '';
        lines.push(['', r.cell.label, info.column, info.base || '—', info.head || '—', '', reason]);
      }
    }
    const changes = new Set(shownChanges(r));
    for (const m of r.metrics) {
      if (changes.has(m) || m.verdict === 'noise' || (options.showAll && m.verdict === 'unchanged')) lines.push(metricLine(table, r, m, failing));
    }
  }
  if (lines.length > 0) {
    out.push(...alignRows([['', 'cell', 'metric', 'base', 'head', 'change', 'note'], ...lines]).map((l) => `  ${l}`));
  } else {
    out.push(`  no change in ${plural(table.rows.length, 'matched cell')}`);
  }
  const configChanged = table.rows.filter((r) => r.isConfigChanged);
  if (configChanged.length > 0) {
    out.push(`  config changed (same axes, different resolved cell): ${configChanged.map((r) => r.cell.label).join(', ')}`);
  }
  if (table.added.length > 0) out.push(`  added:   ${table.added.map((c) => c.label).join(', ')}`);
  if (table.removed.length > 0) out.push(`  removed: ${table.removed.map((c) => c.label).join(', ')}`);
  if (table.columnsOnlyInHead.length > 0) out.push(`  new columns: ${table.columnsOnlyInHead.join(', ')}`);
  if (table.columnsOnlyInBase.length > 0) out.push(`  dropped columns: ${table.columnsOnlyInBase.join(', ')}`);
  return out;
}

function metricLine(table: TableDiff, r: RowDiff, m: MetricDiff, failing: ReadonlyMap<string, string>): string[] {
  const rule = failing.get(`${table.name}\u0000${r.cell.label}\u0000${m.metric}`);
  const mark = rule !== undefined ? 'FAIL' : m.verdict === 'noise' ? '~' : m.verdict === 'changed' ? '*' : '';
  const note = rule !== undefined ? `exceeds ${rule}` : m.verdict === 'noise' ? `noise (${formatNoiseBand(m)})` : m.verdict === 'changed' ? (m.noise.bound === 0 ? 'exact metric' : `beyond ${formatNoiseBand(m)}`) : '';
  return [mark, r.cell.label, m.metric, m.baseText || '—', m.headText || '—', formatChange(m), note];
}

/** Pads columns to a common width; numbers (base, head, change) right-aligned. */
function alignRows(rows: readonly string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const right = new Set([3, 4, 5]);
  return rows.map((r) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
