/**
 * Compares two sets of results CSVs (`mpx diff`). Pure: the CLI reads the files (from disk or through git) and hands
 * over their text; this module parses, matches cells, classifies each metric change as unchanged, noise or a change,
 * and checks `--fail-on` thresholds. Renderers (terminal, Markdown, JSON) only turn the `DiffResult` into text.
 *
 * Decisions (documented in the README):
 * - Rows are matched by their axis columns (model, batch size, policy, accumulation steps, ... — every `axis`
 *   column of `columns.ts` present on both sides), not by `cell_id`: a cell id changes whenever anything in the
 *   resolved cell changes (steps, data, the model's layers), and a reviewer wants to see what that did to the same
 *   matrix cell. Such rows are flagged `isConfigChanged`.
 * - Metrics are the numeric `measured` and `modelled` columns of `columns.ts`, so a column added there is diffed
 *   without touching this file. `<metric>_spread` columns are not diffed; they widen the metric's noise band.
 * - A change is noise when |head − base| ≤ max(absolute tolerance, relative tolerance × |base|, base spread,
 *   head spread); see `DEFAULT_TOLERANCES`.
 */
import { parse } from 'csv-parse/sync';
import { closest } from 'fastest-levenshtein';
import { MpxError } from '../errors.js';
import { type Column, COLUMNS } from './columns.js';

/** One results CSV, parsed but not interpreted. */
export interface ResultTable {
  /** The spec name: the file name without `.csv`. */
  name: string;
  /** Where it came from, for people: `results/a.csv`, `main:results/a.csv`. */
  source: string;
  header: string[];
  rows: Array<Record<string, string>>;
  /** The `<name>.meta.json` beside it, parsed; null when absent or unreadable. */
  metadata: Record<string, unknown> | null;
}

/**
 * How a metric's noise band is set:
 * - `timing`: wall-clock times and rates (`ms`, `samples/s`) — scheduler and machine noise;
 * - `process-memory`: bytes of a whole process or sampled from a device (`rss_*`, `wasm_heap_*`, `gpu_*`) — the
 *   allocator and runtime add noise;
 * - `bytes`: tensor bytes from mpx's ledger — exact, the same on every rerun;
 * - `count`: steps, parameters, samples — exact;
 * - `value`: losses, accuracies, loss scales — deterministic for a backend and machine (reruns are bit-identical),
 *   so only a last-printed-digit tolerance.
 */
export type ToleranceKind = 'timing' | 'process-memory' | 'bytes' | 'count' | 'value';
export const TOLERANCE_KINDS: readonly ToleranceKind[] = ['timing', 'process-memory', 'bytes', 'count', 'value'];

/** A change is within noise when |Δ| ≤ max(absolute, relative × |base|). */
export interface Tolerance {
  relative: number;
  absolute: number;
}

export const DEFAULT_TOLERANCES: Readonly<Record<ToleranceKind, Tolerance>> = {
  timing: { relative: 0.1, absolute: 0 },
  'process-memory': { relative: 0.1, absolute: 0 },
  bytes: { relative: 0, absolute: 0 },
  count: { relative: 0, absolute: 0 },
  value: { relative: 0, absolute: 1e-6 },
};

const TIMING_UNITS = new Set(['ms', 's', 'us', 'ns']);
const COUNT_UNITS = new Set(['steps', 'parameters', 'runs', 'micro-batches', 'samples']);
/** Info columns that say nothing about the outcome (position, id) or repeat another column (reason). */
const SKIPPED_INFO = new Set(['cell', 'cell_id', 'reason']);
const SPREAD_SUFFIX = '_spread';

export function toleranceKindOf(column: Pick<Column, 'name' | 'unit'>): ToleranceKind {
  if (TIMING_UNITS.has(column.unit) || column.unit.endsWith('/s')) return 'timing';
  if (column.unit === 'bytes') return /^(rss|wasm_heap|gpu)_/.test(column.name) ? 'process-memory' : 'bytes';
  if (COUNT_UNITS.has(column.unit)) return 'count';
  return 'value';
}

/** The columns `mpx diff` compares as numbers: measured and modelled ones, without the spreads. */
export function metricColumns(columns: readonly Column[] = COLUMNS): Column[] {
  const names = new Set(columns.map((c) => c.name));
  return columns.filter(
    (c) =>
      (c.kind === 'measured' || c.kind === 'modelled') &&
      !(c.name.endsWith(SPREAD_SUFFIX) && names.has(c.name.slice(0, -SPREAD_SUFFIX.length))),
  );
}

/** Parses a results CSV. Throws MpxError RESULTS_IO naming `source` when it is not one. */
export function parseResultsCsv(text: string, name: string, source: string, metadata: Record<string, unknown> | null = null): ResultTable {
  let records: string[][];
  try {
    records = parse(text, { relax_column_count: false, skip_empty_lines: true, bom: true }) as string[][];
  } catch (error) {
    throw new MpxError('RESULTS_IO', `${source} is not a valid CSV: ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'restore it from git, or re-run mpx run to write it again',
      cause: error,
    });
  }
  const [header, ...body] = records;
  const axes = COLUMNS.filter((c) => c.kind === 'axis').map((c) => c.name);
  if (header === undefined || !axes.some((a) => header.includes(a))) {
    throw new MpxError('RESULTS_IO', `${source} is not an mpx results CSV: its header has none of the columns ${axes.join(', ')}`, {
      hint: 'pass a results/<spec>.csv written by mpx run, a results directory or a git ref',
    });
  }
  const rows = body.map((values) => Object.fromEntries(header.map((h, i) => [h, values[i] ?? ''])));
  return { name, source, header, rows, metadata };
}

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

/** Other names people use for a metric column: camelCase and `_per_second`. */
export function canonicalMetricName(name: string): string {
  return name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/_per_second$/, '_per_s');
}

function resolveMetric(name: string, metrics: readonly string[], flag: string, text: string): string {
  const metric = canonicalMetricName(name);
  if (metrics.includes(metric)) return metric;
  throw new MpxError('USAGE', `${flag} ${text}: "${name}" is not a metric (metrics: ${metrics.join(', ')})`, {
    hint: `did you mean "${closest(metric, [...metrics])}"?`,
  });
}

const AMOUNT = /^([+-]?)(\d+(?:\.\d+)?(?:e[+-]?\d+)?)(%?)$/i;

/**
 * `<metric>:<threshold>`: `peak_bytes:+5%` fails when peak_bytes rises more than 5%, `samples_per_s:-10%` when it
 * falls more than 10%, `final_loss:0.01` (no sign) when it moves more than 0.01 either way. Throws MpxError USAGE.
 */
export function parseFailOn(text: string, metrics: readonly string[] = metricColumns().map((c) => c.name)): FailOnRule {
  const colon = text.lastIndexOf(':');
  const amount = AMOUNT.exec(colon < 0 ? '' : text.slice(colon + 1).trim());
  if (colon <= 0 || amount === null) {
    throw new MpxError('USAGE', `--fail-on ${text}: expected <metric>:<threshold>, e.g. peak_bytes:+5% or samples_per_s:-10%`, {
      hint: 'a leading + fails on increases, - on decreases, no sign on both; % makes it relative to the base value',
    });
  }
  const metric = resolveMetric(text.slice(0, colon), metrics, '--fail-on', text);
  const [, sign, number, percent] = amount;
  const value = Number(number);
  return {
    metric,
    direction: sign === '+' ? 'up' : sign === '-' ? 'down' : 'any',
    threshold: percent === '%' ? { relative: value / 100 } : { absolute: value },
    text,
  };
}

/**
 * `<metric or kind>=<tolerance>`: `timing=25%`, `final_loss=1e-4`, `peak_bytes=0`. A kind (timing,
 * process-memory, bytes, count, value) sets the default for its metrics; a metric overrides its kind.
 */
export function parseTolerance(text: string, metrics: readonly string[] = metricColumns().map((c) => c.name)): [string, Tolerance] {
  const eq = text.lastIndexOf('=');
  const amount = AMOUNT.exec(eq < 0 ? '' : text.slice(eq + 1).trim());
  if (eq <= 0 || amount === null || amount[1] !== '') {
    throw new MpxError('USAGE', `--tolerance ${text}: expected <metric or kind>=<amount>, e.g. timing=25% or final_loss=1e-4`, {
      hint: `kinds: ${TOLERANCE_KINDS.join(', ')}; an amount with % is relative to the base value`,
    });
  }
  const name = text.slice(0, eq).trim();
  const key = (TOLERANCE_KINDS as readonly string[]).includes(name) ? name : resolveMetric(name, [...metrics, ...TOLERANCE_KINDS], '--tolerance', text);
  const value = Number(amount[2]);
  return [key, amount[3] === '%' ? { relative: value / 100, absolute: 0 } : { relative: 0, absolute: value }];
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
  kind: ToleranceKind;
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
  tolerances: Record<ToleranceKind, Tolerance>;
}

/** Compares tables by name (pass them already paired: same name on both sides = one spec). */
export function diffResults(base: readonly ResultTable[], head: readonly ResultTable[], options: DiffOptions): DiffResult {
  const byName = (tables: readonly ResultTable[]) => new Map(tables.map((t) => [t.name, t]));
  const baseByName = byName(base);
  const headByName = byName(head);
  const names = [...new Set([...baseByName.keys(), ...headByName.keys()])].sort();
  const tables = names.map((name) => diffTable(baseByName.get(name) ?? null, headByName.get(name) ?? null, options));
  const failures = tables.flatMap((t) => checkThresholds(t, options.failOn ?? []));
  const kinds = Object.fromEntries(
    TOLERANCE_KINDS.map((k) => [k, options.tolerances?.[k] ?? DEFAULT_TOLERANCES[k]]),
  ) as Record<ToleranceKind, Tolerance>;
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

/** `1 cell`, `2 cells`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

export function isRowChanged(row: RowDiff): boolean {
  return row.info.length > 0 || row.metrics.some((m) => m.verdict === 'changed');
}

function diffTable(base: ResultTable | null, head: ResultTable | null, options: DiffOptions): TableDiff {
  const name = (head ?? base)!.name;
  const axisNames = COLUMNS.filter((c) => c.kind === 'axis').map((c) => c.name);
  const present = (t: ResultTable | null) => new Set(t?.header ?? []);
  const inBase = present(base);
  const inHead = present(head);
  const keyColumns =
    base && head ? axisNames.filter((a) => inBase.has(a) && inHead.has(a)) : axisNames.filter((a) => inBase.has(a) || inHead.has(a));
  const refOf = (row: Record<string, string>): CellRef => cellRef(row, keyColumns);

  const result: TableDiff = {
    name,
    status: base === null ? 'added' : head === null ? 'removed' : 'compared',
    base: base && sideInfo(base),
    head: head && sideInfo(head),
    keyColumns,
    rows: [],
    added: [],
    removed: [],
    columnsOnlyInBase: base && head ? base.header.filter((h) => !inHead.has(h)) : [],
    columnsOnlyInHead: base && head ? head.header.filter((h) => !inBase.has(h)) : [],
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
function keyRows(rows: ReadonlyArray<Record<string, string>>, keyColumns: readonly string[]): Map<string, Record<string, string>> {
  const map = new Map<string, Record<string, string>>();
  for (const row of rows) {
    const base = JSON.stringify(keyColumns.map((k) => row[k] ?? ''));
    let key = base;
    for (let n = 2; map.has(key); n++) key = `${base}#${n}`;
    map.set(key, row);
  }
  return map;
}

const LABEL_PARTS: ReadonlyArray<[string, (v: string) => string]> = [
  ['model', (v) => v],
  ['batch_size', (v) => `bs=${v}`],
  ['policy', (v) => v],
  ['accumulation_steps', (v) => `acc=${v}`],
];

function cellRef(row: Record<string, string>, keyColumns: readonly string[]): CellRef {
  const axes = Object.fromEntries(keyColumns.map((k) => [k, row[k] ?? '']));
  const known = new Set(LABEL_PARTS.map(([name]) => name).concat('micro_batch_size'));
  const parts = LABEL_PARTS.filter(([name]) => keyColumns.includes(name)).map(([name, show]) => show(row[name] ?? ''));
  for (const k of keyColumns) if (!known.has(k)) parts.push(`${k}=${row[k] ?? ''}`);
  return { label: parts.join(' '), axes, cellId: row.cell_id || null };
}

function sideInfo(table: ResultTable): SideInfo {
  const meta = table.metadata;
  const git = meta && typeof meta.git === 'object' && meta.git !== null ? (meta.git as Record<string, unknown>) : null;
  const commit = typeof git?.commit === 'string' ? git.commit.slice(0, 12) : null;
  return {
    source: table.source,
    commit,
    isDirty: typeof git?.dirty === 'boolean' ? git.dirty : null,
    date: typeof meta?.date === 'string' ? meta.date : null,
  };
}

function diffRow(
  baseRow: Record<string, string>,
  headRow: Record<string, string>,
  cell: CellRef,
  base: ResultTable,
  head: ResultTable,
  options: DiffOptions,
): RowDiff {
  const info: InfoChange[] = [];
  for (const column of COLUMNS) {
    if (column.kind !== 'info' || SKIPPED_INFO.has(column.name)) continue;
    if (!base.header.includes(column.name) || !head.header.includes(column.name)) continue;
    const [b, h] = [baseRow[column.name] ?? '', headRow[column.name] ?? ''];
    if (b !== h) info.push({ column: column.name, base: b, head: h });
  }
  const metrics: MetricDiff[] = [];
  for (const column of metricColumns()) {
    // A column one side lacks (results from an older or newer mpx) is listed once per table, not once per cell.
    if (!base.header.includes(column.name) || !head.header.includes(column.name)) continue;
    metrics.push(diffMetric(column, baseRow, headRow, base, head, options));
  }
  const baseCellId = baseRow.cell_id || null;
  const headCellId = headRow.cell_id || null;
  const status = headRow.status ?? '';
  return {
    cell,
    baseCellId,
    headCellId,
    isConfigChanged: baseCellId !== null && headCellId !== null && baseCellId !== headCellId,
    info,
    headReason: status !== '' && status !== 'ok' && headRow.reason ? headRow.reason : null,
    metrics,
  };
}

function diffMetric(
  column: Column,
  baseRow: Record<string, string>,
  headRow: Record<string, string>,
  base: ResultTable,
  head: ResultTable,
  options: DiffOptions,
): MetricDiff {
  const kind = toleranceKindOf(column);
  const baseText = baseRow[column.name] ?? '';
  const headText = headRow[column.name] ?? '';
  const b = parseNumber(baseText, base.source, column.name);
  const h = parseNumber(headText, head.source, column.name);
  const tolerance = options.tolerances?.[column.name] ?? options.tolerances?.[kind] ?? DEFAULT_TOLERANCES[kind];
  const spreadColumn = `${column.name}${SPREAD_SUFFIX}`;
  const spreads = [parseNumber(baseRow[spreadColumn] ?? '', base.source, spreadColumn), parseNumber(headRow[spreadColumn] ?? '', head.source, spreadColumn)]
    .filter((s): s is number => s !== null && Number.isFinite(s));
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
  return { metric: column.name, unit: column.unit, kind, baseText, headText, base: b, head: h, delta, relative, noise, verdict };
}

function parseNumber(text: string, source: string, column: string): number | null {
  const t = text.trim();
  if (t === '') return null;
  if (t === 'nan') return Number.NaN;
  if (t === 'inf') return Number.POSITIVE_INFINITY;
  if (t === '-inf') return Number.NEGATIVE_INFINITY;
  const value = Number(t);
  if (Number.isNaN(value)) {
    throw new MpxError('RESULTS_IO', `${source}: column ${column} holds "${text}", not a number`, {
      hint: 'restore the file from git, or re-run mpx run to write it again',
    });
  }
  return value;
}

/** The fields of two meta.json files that change what numbers mean; commit and date are shown elsewhere. */
function environmentChanges(base: Record<string, unknown> | null, head: Record<string, unknown> | null): EnvironmentChange[] {
  if (base === null || head === null) return [];
  const changes: EnvironmentChange[] = [];
  const text = (value: unknown): string =>
    value === undefined || value === null ? '—' : typeof value === 'string' ? value : Array.isArray(value) ? value.map(text).join(', ') || '—' : JSON.stringify(value);
  const compare = (field: string, get: (meta: Record<string, unknown>) => unknown) => {
    const [b, h] = [text(get(base)), text(get(head))];
    if (b !== h) changes.push({ field, base: b, head: h });
  };
  const obj = (value: unknown): Record<string, unknown> => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {});
  compare('mpx', (m) => m.mpxVersion);
  compare('node', (m) => m.nodeVersion);
  const packages = [...new Set([...Object.keys(obj(base.tfjsVersions)), ...Object.keys(obj(head.tfjsVersions))])].sort();
  for (const pkg of packages) compare(pkg.replace(/^@tensorflow\//, ''), (m) => obj(m.tfjsVersions)[pkg]);
  compare('backends', (m) => m.backends);
  compare('os', (m) => m.os);
  compare('cpu', (m) => obj(m.cpu).model);
  compare('cores', (m) => obj(m.cpu).cores);
  compare('gpus', (m) => (Array.isArray(m.gpus) ? m.gpus.map((g) => `${text(obj(g).name)} (driver ${text(obj(g).driverVersion)})`) : m.gpu));
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

/** `+1.37%`, `-12.5%`; `+0.5` when the base is 0; `new` / `gone` when a side has no value; `—` for nan/inf. */
export function formatChange(m: Pick<MetricDiff, 'base' | 'head' | 'delta' | 'relative'>): string {
  if (m.base === null && m.head === null) return '';
  if (m.base === null) return 'new';
  if (m.head === null) return 'gone';
  if (m.delta === null) return '—';
  if (m.delta === 0) return '0';
  const sign = m.delta > 0 ? '+' : '-';
  if (m.relative === null) return `${sign}${trimNumber(Math.abs(m.delta).toPrecision(4))}`;
  const pct = Math.abs(m.relative) * 100;
  const text = pct >= 10 ? pct.toFixed(1) : pct >= 0.01 ? pct.toFixed(2) : trimNumber(pct.toPrecision(2));
  return `${sign}${text}%`;
}

/** `exact` when no change is noise, `±10%` for relative kinds, `±1e-6` for values, `spread ±0.42` when the repeats' spread set the band. */
export function formatNoiseBand(m: Pick<MetricDiff, 'base' | 'kind' | 'noise'>): string {
  if (m.noise.bound === 0) return 'exact';
  const abs = `±${m.noise.bound < 1e-3 ? m.noise.bound.toExponential() : trimNumber(m.noise.bound.toPrecision(3))}`;
  if (m.noise.source === 'spread') return `spread ${abs}`;
  if (m.kind === 'value' || m.base === null || m.base === 0 || !Number.isFinite(m.base)) return abs;
  return `±${trimNumber(((m.noise.bound / Math.abs(m.base)) * 100).toPrecision(3))}%`;
}

function trimNumber(text: string): string {
  if (text.includes('e')) return String(Number(text));
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}
