/**
 * Compares two sets of results tables (`mpx diff`). Pure: the CLI reads the files (from disk or through git) into
 * typed tables (`table.ts`); this module matches cells, classifies each metric change as unchanged, noise or a change,
 * and checks `--fail-on` thresholds. The renderers beside it (terminal, Markdown, JSON) only turn the `DiffResult` into
 * text.
 *
 * Decisions (documented in the README):
 * - Rows are matched by their axis columns (model, batch size, policy, accumulation steps, ... — every `axis`
 *   column of `columns.ts` present on both sides), not by `cell_id`: a cell id changes whenever anything in the
 *   resolved cell changes (steps, data, the model's layers), and a reviewer wants to see what that did to the same
 *   matrix cell. Such rows are flagged `isConfigChanged`.
 * - Metrics are the columns of `columns.ts` with a noise kind (the measured and modeled numbers), so a column added
 *   there is diffed without touching this file. A metric's spread column is not diffed; it widens the noise band.
 * - A change is noise when |head − base| ≤ max(absolute tolerance, relative tolerance × |base|, base spread,
 *   head spread); see `DEFAULT_TOLERANCES`.
 */
import { NOISE_KINDS, type Column, type NoiseKind } from '../columns.js';
import type { RunMetadata } from '../metadata.js';
import type { ResultTable } from '../table.js';
import { formatChange } from './format.js';

/** A change is within noise when |Δ| ≤ max(absolute, relative × |base|). */
export interface Tolerance {
  relative: number;
  absolute: number;
}

export const DEFAULT_TOLERANCES: Readonly<Record<NoiseKind, Tolerance>> = {
  timing: { relative: 0.1, absolute: 0 },
  'process-memory': { relative: 0.1, absolute: 0 },
  bytes: { relative: 0, absolute: 0 },
  count: { relative: 0, absolute: 0 },
  value: { relative: 0, absolute: 1e-6 },
};

/** Info columns that say nothing about the outcome (position, id) or repeat another column (reason). */
const SKIPPED_INFO = new Set(['cell', 'cell_id', 'reason']);

export interface FailOnRule {
  /** The CSV column (a metric). */
  metric: string;
  /** `up`: fail on an increase beyond the threshold; `down`: on a decrease; `any`: either. */
  direction: 'up' | 'down' | 'any';
  /** A fraction (0.05 for 5%) or an absolute amount in the column's unit. */
  threshold: { relative: number } | { absolute: number };
  /** As the user wrote it, for messages. */
  text: string;
}

export interface DiffOptions {
  failOn?: readonly FailOnRule[];
  /** Keyed by metric column or tolerance kind; replaces the default for it. */
  tolerances?: Readonly<Record<string, Tolerance>>;
  /** Labels of the two sides, e.g. `main:results` and `results`. */
  baseLabel: string;
  headLabel: string;
}

/** `unchanged`: equal (or both missing); `noise`: within the noise band; `changed`: beyond it, or a value appeared, vanished or became non-finite. */
export type Verdict = 'unchanged' | 'noise' | 'changed';

export interface MetricDiff {
  metric: string;
  unit: string;
  kind: NoiseKind;
  /** As written in the CSV ('' = no value). */
  baseText: string;
  headText: string;
  base: number | null;
  head: number | null;
  /** head − base; null when either is missing or not finite. */
  delta: number | null;
  /** delta / |base|; null when delta is, or base is 0. */
  relative: number | null;
  /** The largest |delta| that counts as noise, and where it came from. */
  noise: { bound: number; source: 'spread' | 'tolerance' };
  verdict: Verdict;
}

export interface InfoChange {
  column: string;
  base: string;
  head: string;
}

export interface CellRef {
  /** `mlp bs=64 mixed_float16 acc=4` */
  label: string;
  /** The axis values it was matched on, by column. */
  axes: Record<string, string>;
  cellId: string | null;
}

export interface RowDiff {
  cell: CellRef;
  baseCellId: string | null;
  headCellId: string | null;
  /** Same axes, different cell id: the resolved cell (steps, data, model definition, seed, ...) changed. */
  isConfigChanged: boolean;
  /** Info columns that differ (status, backend, precision, runs_ok, params, ...). */
  info: InfoChange[];
  /** Head's reason when its status is not ok. */
  headReason: string | null;
  /** Every metric, unchanged ones included. */
  metrics: MetricDiff[];
}

export interface EnvironmentChange {
  /** e.g. `cpu`, `tfjs-core`, `backends`. */
  field: string;
  base: string;
  head: string;
}

export interface SideInfo {
  source: string;
  /** From meta.json: commit (short) and whether the tree was dirty, date; null without metadata. */
  commit: string | null;
  isDirty: boolean | null;
  date: string | null;
}

export interface TableDiff {
  name: string;
  /** `added`: only in head; `removed`: only in base; `compared`: in both. */
  status: 'added' | 'removed' | 'compared';
  base: SideInfo | null;
  head: SideInfo | null;
  /** The axis columns rows were matched on. */
  keyColumns: string[];
  /** Matched cells in head order. */
  rows: RowDiff[];
  /** Cells only in head / only in base. */
  added: CellRef[];
  removed: CellRef[];
  columnsOnlyInBase: string[];
  columnsOnlyInHead: string[];
  /** Versions and machine facts that differ between the two meta.json files. */
  environment: EnvironmentChange[];
}

export interface ThresholdFailure {
  table: string;
  cell: string;
  metric: string;
  rule: string;
  baseText: string;
  headText: string;
  relative: number | null;
  delta: number | null;
  /** `formatChange` of the metric, e.g. `+6.2%`. */
  change: string;
}

export interface DiffSummary {
  tables: number;
  cellsCompared: number;
  /** Cells with at least one changed metric or info column. */
  cellsChanged: number;
  metricsChanged: number;
  metricsNoise: number;
  cellsAdded: number;
  cellsRemoved: number;
  cellsConfigChanged: number;
}

export interface DiffResult {
  base: string;
  head: string;
  tables: TableDiff[];
  failures: ThresholdFailure[];
  summary: DiffSummary;
  /** The tolerance in force per kind, for the footnote. */
  tolerances: Record<NoiseKind, Tolerance>;
}

/** A table of any kind (run matrix or capacity searches): the diff reads its rows through its schema. */
type AnyTable = ResultTable<unknown>;

/** Compares tables by name (pass them already paired: same name on both sides = one spec, or one spec's capacity). */
export function diffResults(base: readonly AnyTable[], head: readonly AnyTable[], options: DiffOptions): DiffResult {
  const byName = (tables: readonly AnyTable[]) => new Map(tables.map((t) => [t.name, t]));
  const baseByName = byName(base);
  const headByName = byName(head);
  const names = [...new Set([...baseByName.keys(), ...headByName.keys()])].sort();
  const tables = names.map((name) => diffTable(baseByName.get(name) ?? null, headByName.get(name) ?? null, options));
  const failures = tables.flatMap((t) => checkThresholds(t, options.failOn ?? []));
  const kinds = Object.fromEntries(NOISE_KINDS.map((k) => [k, options.tolerances?.[k] ?? DEFAULT_TOLERANCES[k]])) as Record<NoiseKind, Tolerance>;
  return { base: options.baseLabel, head: options.headLabel, tables, failures, summary: summarise(tables), tolerances: kinds };
}

function summarise(tables: readonly TableDiff[]): DiffSummary {
  const rows = tables.flatMap((t) => t.rows);
  const metrics = rows.flatMap((r) => r.metrics);
  return {
    tables: tables.length,
    cellsCompared: rows.length,
    cellsChanged: rows.filter(isRowChanged).length,
    metricsChanged: metrics.filter((m) => m.verdict === 'changed').length,
    metricsNoise: metrics.filter((m) => m.verdict === 'noise').length,
    cellsAdded: tables.reduce((n, t) => n + t.added.length, 0),
    cellsRemoved: tables.reduce((n, t) => n + t.removed.length, 0),
    cellsConfigChanged: rows.filter((r) => r.isConfigChanged).length,
  };
}

/**
 * The metric changes worth a line of their own: values that vanished or appeared because the cell's status changed
 * (ok → failed) are explained by the status line.
 */
export function shownChanges(row: RowDiff): MetricDiff[] {
  const isStatusChanged = row.info.some((i) => i.column === 'status');
  return row.metrics.filter((m) => m.verdict === 'changed' && !(isStatusChanged && (m.base === null || m.head === null)));
}

export function isRowChanged(row: RowDiff): boolean {
  return row.info.length > 0 || row.metrics.some((m) => m.verdict === 'changed');
}

function diffTable(base: AnyTable | null, head: AnyTable | null, options: DiffOptions): TableDiff {
  const name = (head ?? base)!.name;
  const schema = (head ?? base)!.schema;
  const has = (t: AnyTable | null, c: Column<unknown>) => t?.columns.includes(c) ?? false;
  const keyColumns = schema.columns.filter((c) => c.kind === 'axis' && (base && head ? has(base, c) && has(head, c) : has(base, c) || has(head, c)));
  const refOf = (row: unknown): CellRef => cellRef(row, keyColumns, schema);

  const result: TableDiff = {
    name,
    status: base === null ? 'added' : head === null ? 'removed' : 'compared',
    base: base && sideInfo(base),
    head: head && sideInfo(head),
    keyColumns: keyColumns.map((c) => c.name),
    rows: [],
    added: [],
    removed: [],
    columnsOnlyInBase: base && head ? base.header.filter((h) => !head.header.includes(h)) : [],
    columnsOnlyInHead: base && head ? head.header.filter((h) => !base.header.includes(h)) : [],
    environment: base && head ? environmentChanges(base.metadata, head.metadata) : [],
  };
  if (base === null || head === null) {
    if (head) result.added = head.rows.map(refOf);
    if (base) result.removed = base.rows.map(refOf);
    return result;
  }

  const baseRows = keyRows(base.rows, keyColumns);
  const matched = new Set<string>();
  for (const [key, headRow] of keyRows(head.rows, keyColumns)) {
    const baseRow = baseRows.get(key);
    if (baseRow === undefined) {
      result.added.push(refOf(headRow));
      continue;
    }
    matched.add(key);
    result.rows.push(diffRow(baseRow, headRow, refOf(headRow), base, head, options));
  }
  for (const [key, baseRow] of baseRows) if (!matched.has(key)) result.removed.push(refOf(baseRow));
  return result;
}

/** Rows by their axis values; a repeated key (not produced by mpx) gets `#2`, `#3` so no row is lost. */
function keyRows(rows: readonly unknown[], keyColumns: readonly Column<unknown>[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (const row of rows) {
    const base = JSON.stringify(keyColumns.map((c) => c.format(row)));
    let key = base;
    for (let n = 2; map.has(key); n++) key = `${base}#${n}`;
    map.set(key, row);
  }
  return map;
}

function cellRef(row: unknown, keyColumns: readonly Column<unknown>[], schema: AnyTable['schema']): CellRef {
  return {
    label: schema.label(row),
    axes: Object.fromEntries(keyColumns.map((c) => [c.name, c.format(row)])),
    cellId: schema.cellId(row) || null,
  };
}

function sideInfo(table: AnyTable): SideInfo {
  const meta = table.metadata;
  return {
    source: table.source,
    commit: meta?.git ? meta.git.commit.slice(0, 12) : null,
    isDirty: meta?.git ? meta.git.dirty : null,
    date: meta?.date || null,
  };
}

function diffRow(baseRow: unknown, headRow: unknown, cell: CellRef, base: AnyTable, head: AnyTable, options: DiffOptions): RowDiff {
  const { schema } = head;
  // A column one side lacks (results from an older or newer mpx) is listed once per table, not once per cell.
  const inBoth = (c: Column<unknown>) => base.columns.includes(c) && head.columns.includes(c);
  const info: InfoChange[] = [];
  for (const column of schema.columns) {
    if (column.kind !== 'info' || SKIPPED_INFO.has(column.name) || !inBoth(column)) continue;
    const [b, h] = [column.format(baseRow), column.format(headRow)];
    if (b !== h) info.push({ column: column.name, base: b, head: h });
  }
  const metrics = schema.columns.filter((c) => c.noise !== null && inBoth(c)).map((column) => diffMetric(column, baseRow, headRow, schema.columns, options));
  const baseCellId = schema.cellId(baseRow) || null;
  const headCellId = schema.cellId(headRow) || null;
  const headReason = schema.reason(headRow);
  return {
    cell,
    baseCellId,
    headCellId,
    isConfigChanged: baseCellId !== null && headCellId !== null && baseCellId !== headCellId,
    info,
    headReason: schema.status(headRow) !== 'ok' && headReason ? headReason : null,
    metrics,
  };
}

function diffMetric(column: Column<unknown>, baseRow: unknown, headRow: unknown, columns: readonly Column<unknown>[], options: DiffOptions): MetricDiff {
  const kind = column.noise!;
  const number = (row: unknown, c: Column<unknown>): number | null => {
    const v = c.value(row);
    return typeof v === 'number' ? v : null;
  };
  const b = number(baseRow, column);
  const h = number(headRow, column);
  const tolerance = options.tolerances?.[column.name] ?? options.tolerances?.[kind] ?? DEFAULT_TOLERANCES[kind];
  const spreadColumn = column.spread === null ? undefined : columns.find((s) => s.name === column.spread);
  const spreads = spreadColumn === undefined ? [] : [number(baseRow, spreadColumn), number(headRow, spreadColumn)].filter((v): v is number => v !== null && Number.isFinite(v));
  const toleranceBound = Math.max(tolerance.absolute, b !== null && Number.isFinite(b) ? tolerance.relative * Math.abs(b) : 0);
  const spreadBound = Math.max(0, ...spreads);
  const noise = { bound: Math.max(toleranceBound, spreadBound), source: spreadBound > toleranceBound ? ('spread' as const) : ('tolerance' as const) };

  const isFinitePair = b !== null && h !== null && Number.isFinite(b) && Number.isFinite(h);
  const delta = isFinitePair ? h - b : null;
  const relative = delta !== null && b !== 0 ? delta / Math.abs(b!) : null;
  let verdict: Verdict;
  if (b === null && h === null) verdict = 'unchanged';
  else if (b === null || h === null) verdict = 'changed';
  else if (Object.is(b, h) || b === h || (Number.isNaN(b) && Number.isNaN(h))) verdict = 'unchanged';
  else if (delta === null) verdict = 'changed'; // a value became or stopped being nan/inf
  else verdict = Math.abs(delta) <= noise.bound ? 'noise' : 'changed';
  const baseText = column.format(baseRow);
  const headText = column.format(headRow);
  return { metric: column.name, unit: column.unit, kind, baseText, headText, base: b, head: h, delta, relative, noise, verdict };
}

/** The fields of two meta.json files that change what numbers mean; commit and date are shown elsewhere. */
function environmentChanges(base: RunMetadata | null, head: RunMetadata | null): EnvironmentChange[] {
  if (base === null || head === null) return [];
  const changes: EnvironmentChange[] = [];
  const text = (value: string | number | null | undefined): string => (value === undefined || value === null || value === '' ? '—' : String(value));
  const compare = (field: string, get: (meta: RunMetadata) => string | number | null | undefined) => {
    const [b, h] = [text(get(base)), text(get(head))];
    if (b !== h) changes.push({ field, base: b, head: h });
  };
  compare('mpx', (m) => m.mpxVersion);
  compare('node', (m) => m.nodeVersion);
  const packages = [...new Set([...Object.keys(base.tfjsVersions), ...Object.keys(head.tfjsVersions)])].sort();
  for (const pkg of packages) compare(pkg.replace(/^@tensorflow\//, ''), (m) => m.tfjsVersions[pkg]);
  compare('backends', (m) => m.backends.join(', '));
  compare('torch', (m) => (m.torch === null ? null : `${m.torch.version}${m.torch.cuda ? ' (CUDA)' : ''}`));
  compare('os', (m) => m.os);
  compare('cpu', (m) => m.cpu.model);
  compare('cores', (m) => m.cpu.cores || null);
  compare('gpus', (m) => m.gpus.map((g) => `${text(g.name)} (driver ${text(g.driverVersion)})`).join(', '));
  return changes;
}

/** The rules a table's rows break: only real changes (not noise), in the rule's direction, beyond its threshold. */
function checkThresholds(table: TableDiff, rules: readonly FailOnRule[]): ThresholdFailure[] {
  const failures: ThresholdFailure[] = [];
  for (const row of table.rows) {
    for (const rule of rules) {
      const m = row.metrics.find((x) => x.metric === rule.metric);
      if (m === undefined || m.verdict !== 'changed' || !exceeds(m, rule)) continue;
      failures.push({
        table: table.name,
        cell: row.cell.label,
        metric: m.metric,
        rule: rule.text,
        baseText: m.baseText,
        headText: m.headText,
        relative: m.relative,
        delta: m.delta,
        change: formatChange(m),
      });
    }
  }
  return failures;
}

/**
 * Whether a changed metric breaks a rule. A value that becomes nan or ±inf breaks any rule on its metric; a value
 * that appears or vanishes (a cell that is not ok on one side) breaks none: `mpx run`'s exit code reports failed runs.
 */
export function exceeds(m: Pick<MetricDiff, 'base' | 'head' | 'delta'>, rule: Pick<FailOnRule, 'direction' | 'threshold'>): boolean {
  if (m.base === null || m.head === null) return false;
  if (!Number.isFinite(m.head)) return Number.isFinite(m.base) || !Object.is(m.base, m.head);
  if (m.delta === null) return false; // base was non-finite, head is finite: a recovery
  const signed = rule.direction === 'up' ? m.delta : rule.direction === 'down' ? -m.delta : Math.abs(m.delta);
  if (signed <= 0) return false;
  if ('absolute' in rule.threshold) return signed > rule.threshold.absolute;
  return m.base === 0 ? true : signed / Math.abs(m.base) > rule.threshold.relative;
}
