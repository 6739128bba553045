/**
 * The HTML report's charts as Vega-Lite specs (data inline): peak memory vs batch size, its ratio to float32, the
 * anatomy of the peak, step time, throughput, final loss and accuracy, and the capacity result. One chart per figure,
 * faceted into a row per model and engine and a column per accumulation setting, so the number of charts does not
 * grow with the matrix. Every layer has a `name`: the SVG marks carry it as a class, which the browser test counts.
 * Pure: specs only; `html.ts` renders them.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ResultRow } from '../aggregate.js';
import { POLICIES, type Policy } from '../../spec/types.js';
import { formatBytes, isTorchRow, type PeakKind } from '../peak.js';
import { capacityBasis, type CapacityTable } from './capacity.js';
import { BUDGET_COLOR, BUDGET_DRAW_FACTOR, POLICY_COLORS } from './mermaid.js';
import type { PeakGroup, ReportSummary } from './summary.js';

export interface ReportChart {
  /** Stable id: the figure's `data-chart` attribute. */
  id: string;
  title: string;
  /** How to read it: one paragraph of plain text (escaped by the page). */
  caption: string;
  spec: TopLevelSpec;
}

/** The parts of a peak the CSV attributes exactly at the moment of that peak, bottom to top. */
export const ANATOMY_PARTS = [
  'parameters',
  'weight gradients',
  'optimizer slots',
  'accumulators',
  'activations & other',
  'gradients, activations & other',
] as const;
export type AnatomyPart = (typeof ANATOMY_PARTS)[number];
/** Greys for the state every policy keeps in fp32, colours for what the policy changes; none is a policy's colour. */
const ANATOMY_COLORS: Readonly<Record<AnatomyPart, string>> = {
  parameters: '#334155',
  'weight gradients': '#8b5cf6',
  'optimizer slots': '#64748b',
  accumulators: '#cbd5e1',
  'activations & other': '#f472b6',
  'gradients, activations & other': '#f9a8d4',
};

const PANEL_WIDTH = 230;
const PANEL_HEIGHT = 150;
const WRAP_COLUMNS = 3;
const KIND_DASH: Readonly<Record<PeakKind, number[]>> = { measured: [1, 0], modeled: [6, 3] };
const KIND_SHAPE: Readonly<Record<PeakKind, string>> = { measured: 'circle', modeled: 'diamond' };

/** One row of chart data: a cell of the matrix with every figure the charts use. */
interface CellDatum {
  panel: string;
  acc: string;
  batch: number;
  policy: Policy;
  kind: PeakKind;
  status: string;
  peakMb: number | null;
  ratio: number | null;
  /** For oom cells: where the cross goes — the bytes reached, else the budget; null otherwise. */
  oomMb: number | null;
  /** The budget, on the cells of groups whose largest peak it does not dwarf (`BUDGET_DRAW_FACTOR`); else null. */
  budgetMb: number | null;
  stepMs: number | null;
  samplesPerSecond: number | null;
  finalLoss: number | null;
  evalAccuracy: number | null;
}

export function buildCharts(summary: ReportSummary, options: { budgetBytes: number | null; capacity: CapacityTable | null }): ReportChart[] {
  const data = summary.groups.flatMap((g) => cellData(g, summary, options.budgetBytes));
  const capacity = options.capacity === null ? null : capacityChart(options.capacity);
  if (data.length === 0) return capacity === null ? [] : [capacity];
  const layout = facetLayout(summary);
  const policies = POLICIES.filter((p) => data.some((d) => d.policy === p));
  const kinds = (['measured', 'modeled'] as const).filter((k) => data.some((d) => d.kind === k));
  const scales = { policies, kinds };
  const mixedScales = { policies: policies.filter((p) => p !== 'float32'), kinds };
  const drawBudget = data.some((d) => d.budgetMb !== null);
  const kindWords = kinds.map((k) => (k === 'measured' ? 'measured (solid lines, circles)' : 'modeled (dashed lines, diamonds)')).join(' and ');

  const charts: ReportChart[] = [
    {
      id: 'peak',
      title: 'Peak memory vs batch size',
      caption:
        `One line per precision policy; batch size on a log2 axis. Figures are ${kindWords}: ` +
        `${summary.sources.map((s) => `${s.column.name} is ${s.kind}, ${s.explanation}`).join('; ')}. ` +
        `A cross marks a cell that ran out of memory, at the bytes it had reached when it stopped. ` +
        `Policies with equal peaks draw on top of one another: each line is narrower than the one before, so the ones below show at its edges.` +
        (drawBudget
          ? ` The red dashed rule is the memory budget (${formatBytes(options.budgetBytes!)}), drawn where it is at most ${BUDGET_DRAW_FACTOR}× the panel's largest peak.`
          : options.budgetBytes !== null
            ? ` The budget (${formatBytes(options.budgetBytes)}) is more than ${BUDGET_DRAW_FACTOR}× every peak and not drawn.`
            : ''),
      spec: faceted(layout, data, [
        line('peak_lines', 'peakMb', 'peak (MB)', scales, { isZeroBased: true }),
        points('peak_points', 'peakMb', scales),
        ...(data.some((d) => d.oomMb !== null) ? [oomMarks(scales)] : []),
        ...(drawBudget ? [budgetRule()] : []),
      ]),
    },
    {
      id: 'ratio',
      title: 'Peak of each mixed policy ÷ float32',
      caption:
        'Below 1 the mixed policy needs less memory than float32 at that batch size, above 1 it needs more; the grey rule is float32 itself. ' +
        'mixed_float16 and mixed_bfloat16 usually have the same peak (loss scaling costs a few scalars): the narrower line lies on the wider one.',
      spec: faceted(layout, data.filter((d) => d.policy !== 'float32'), [
        line('ratio_lines', 'ratio', 'peak ÷ float32 peak', mixedScales, { isZeroBased: false }),
        points('ratio_points', 'ratio', mixedScales),
        // One rule per panel (a datum rule would draw one per data row).
        { name: 'float32_rule', transform: [{ aggregate: [{ op: 'count', as: 'cells' }], groupby: ['panel', 'acc'] }], mark: { type: 'rule', color: '#6b7280' }, encoding: { y: { datum: 1 } } },
      ]),
    },
    anatomyChart(summary, layout),
    metricChart('step', 'Step time vs batch size', 'stepMs', 'ms per update', 'Median wall time of one optimizer update, measured. On tfjs engines mixed policies are emulated: their times include rounding done in software.', layout, data, scales),
    metricChart('throughput', 'Throughput vs batch size', 'samplesPerSecond', 'samples/s', 'Training samples per second, measured.', layout, data, scales),
    metricChart('loss', 'Final training loss vs batch size', 'finalLoss', 'final loss', 'Mean training loss of the last update (measured): policies that agree here trained alike.', layout, data, scales),
    metricChart('accuracy', 'Accuracy on the held-out split vs batch size', 'evalAccuracy', 'accuracy', 'Fraction of held-out samples classified correctly after training (measured).', layout, data, scales),
  ];
  return [...charts, ...(capacity === null ? [] : [capacity])].filter((c) => hasData(c.spec));
}

function cellData(group: PeakGroup, summary: ReportSummary, budgetBytes: number | null): CellDatum[] {
  const panel = panelOf(group, summary);
  const out: CellDatum[] = [];
  const maxPeakBytes = Math.max(0, ...group.policies.flatMap((p) => group.batches.map((b) => group.cell(p, b)?.peak?.bytes ?? 0)));
  const budgetMb = budgetBytes !== null && maxPeakBytes > 0 && budgetBytes <= BUDGET_DRAW_FACTOR * maxPeakBytes ? budgetBytes / 1e6 : null;
  for (const policy of group.policies) {
    for (const batch of group.batches) {
      const cell = group.cell(policy, batch);
      if (cell === undefined) continue;
      const { row } = cell;
      const oomBytes = row.status === 'oom' ? (row.oomReachedBytes ?? budgetBytes) : null;
      out.push({
        panel,
        acc: `acc ${group.accumulationSteps}`,
        batch,
        policy,
        kind: group.source.kind,
        status: row.status,
        peakMb: cell.peak === null ? null : cell.peak.bytes / 1e6,
        ratio: cell.ratio,
        oomMb: oomBytes === null ? null : oomBytes / 1e6,
        budgetMb,
        stepMs: finite(row.stepMs),
        samplesPerSecond: finite(row.samplesPerSecond),
        finalLoss: finite(row.finalLoss),
        evalAccuracy: finite(row.evalAccuracy),
      });
    }
  }
  return out;
}

function panelOf(group: PeakGroup, summary: ReportSummary): string {
  return summary.hasSeveralEngines || group.requestedBackend !== 'auto' ? `${group.model} · ${group.engine}` : group.model;
}

interface FacetLayout {
  panels: string[];
  accs: string[];
}

function facetLayout(summary: ReportSummary): FacetLayout {
  const panels = [...new Set(summary.groups.map((g) => panelOf(g, summary)))];
  const accs = [...new Set(summary.groups.map((g) => g.accumulationSteps))].sort((a, b) => a - b).map((a) => `acc ${a}`);
  return { panels, accs };
}

type Layer = Record<string, unknown>;
interface Scales {
  policies: Policy[];
  kinds: PeakKind[];
}

/**
 * A row per model (and engine) and a column per accumulation setting when there are several; otherwise the models
 * wrap, three to a row. y scales per panel row: models differ by orders of magnitude.
 */
function faceted(layout: FacetLayout, values: readonly object[], layer: Layer[]): TopLevelSpec {
  const header = { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelFontWeight: 'bold', labelFontSize: 12, labelOrient: 'top', labelLimit: PANEL_WIDTH };
  const panel = { field: 'panel', type: 'nominal', title: null, sort: layout.panels, header };
  const facet =
    layout.accs.length > 1
      ? { facet: { row: panel, column: { field: 'acc', type: 'nominal', title: null, sort: layout.accs, header } } }
      : { facet: panel, columns: WRAP_COLUMNS };
  return {
    data: { values: values as Array<Record<string, unknown>> },
    ...facet,
    spec: { width: PANEL_WIDTH, height: PANEL_HEIGHT, layer },
    resolve: { scale: { y: 'independent' } },
    config: CONFIG,
  } as unknown as TopLevelSpec;
}

const CONFIG = { font: 'sans-serif', view: { stroke: '#e5e7eb' }, axis: { labelColor: '#374151', titleColor: '#111827', gridColor: '#f3f4f6' } };

function batchAxis(): Record<string, unknown> {
  return { field: 'batch', type: 'quantitative', title: 'batch size', scale: { type: 'log', base: 2, nice: false }, axis: { format: 'd', labelOverlap: true } };
}

function policyColor(policies: readonly Policy[]): Record<string, unknown> {
  return { field: 'policy', type: 'nominal', title: 'policy', scale: { domain: policies, range: policies.map((p) => POLICY_COLORS[p]) } };
}

/**
 * Policies with equal values (mixed_float16 and mixed_bfloat16 usually are: loss scaling costs a few scalars) would
 * draw exactly on top of one another; drawn in policy order, each narrower than the one before, all stay visible.
 */
const LINE_WIDTHS = [5, 3, 1.5];
const POINT_SIZES = [110, 55, 18];

function policyWidth(policies: readonly Policy[], range: readonly number[]): Record<string, unknown> {
  return { field: 'policy', type: 'ordinal', sort: policies, title: 'policy', scale: { domain: policies, range: policies.map((p) => range[POLICIES.indexOf(p)]) } };
}

function line(name: string, field: string, title: string, scales: Scales, options: { isZeroBased: boolean }): Layer {
  return {
    name,
    transform: [{ filter: `isValid(datum.${field})` }],
    mark: { type: 'line', aria: false },
    encoding: {
      x: batchAxis(),
      y: { field, type: 'quantitative', title, scale: { zero: options.isZeroBased } },
      color: policyColor(scales.policies),
      strokeWidth: policyWidth(scales.policies, LINE_WIDTHS),
      strokeDash: { field: 'kind', type: 'nominal', title: 'figure', scale: { domain: scales.kinds, range: scales.kinds.map((k) => KIND_DASH[k]) } },
    },
  };
}

function points(name: string, field: string, scales: Scales): Layer {
  return {
    name,
    transform: [{ filter: `isValid(datum.${field})` }],
    mark: { type: 'point', filled: true, aria: false },
    encoding: {
      x: batchAxis(),
      y: { field, type: 'quantitative' },
      color: policyColor(scales.policies),
      size: policyWidth(scales.policies, POINT_SIZES),
      shape: { field: 'kind', type: 'nominal', title: 'figure', scale: { domain: scales.kinds, range: scales.kinds.map((k) => KIND_SHAPE[k]) } },
    },
  };
}

/** A cross per cell that ran out of memory, at the bytes it reached. */
function oomMarks(scales: Scales): Layer {
  return {
    name: 'oom_marks',
    transform: [{ filter: 'isValid(datum.oomMb)' }],
    mark: { type: 'point', shape: 'cross', size: 110, filled: true, strokeWidth: 0, aria: false },
    encoding: { x: batchAxis(), y: { field: 'oomMb', type: 'quantitative' }, color: policyColor(scales.policies) },
  };
}

/** One rule per panel that has a budget to draw. */
function budgetRule(): Layer {
  return {
    name: 'budget_rule',
    transform: [{ filter: 'isValid(datum.budgetMb)' }, { aggregate: [{ op: 'max', field: 'budgetMb', as: 'budgetMb' }], groupby: ['panel', 'acc'] }],
    mark: { type: 'rule', color: BUDGET_COLOR, strokeDash: [4, 4], strokeWidth: 1.5 },
    encoding: { y: { field: 'budgetMb', type: 'quantitative' } },
  };
}

function metricChart(id: string, title: string, field: keyof CellDatum, yTitle: string, caption: string, layout: FacetLayout, data: CellDatum[], scales: Scales): ReportChart {
  const values = data.filter((d) => d[field] !== null);
  const measured: Scales = { ...scales, kinds: ['measured'] };
  // Every metric here is measured: no dash or shape for the kind.
  const plain = (layer: Layer): Layer => {
    const { strokeDash: _dash, shape: _shape, ...encoding } = layer.encoding as Record<string, unknown>;
    return { ...layer, encoding };
  };
  return {
    id,
    title,
    caption,
    spec: faceted(layout, values, [plain(line(`${id}_lines`, field, yTitle, measured, { isZeroBased: false })), plain(points(`${id}_points`, field, measured))]),
  };
}

/** The planning peak of each cell split into the parts the CSV knows at that moment (see `anatomyOf`). */
function anatomyChart(summary: ReportSummary, layout: FacetLayout): ReportChart {
  const values: Array<{ panel: string; acc: string; batch: number; policy: Policy; part: AnatomyPart; order: number; mb: number }> = [];
  for (const group of summary.groups) {
    for (const batch of group.batches) {
      for (const policy of group.policies) {
        const cell = group.cell(policy, batch);
        if (cell?.peak == null) continue;
        for (const [part, bytes] of anatomyOf(cell.row, cell.peak.bytes)) {
          if (bytes > 0) {
            values.push({ panel: panelOf(group, summary), acc: `acc ${group.accumulationSteps}`, batch, policy, part, order: ANATOMY_PARTS.indexOf(part), mb: bytes / 1e6 });
          }
        }
      }
    }
  }
  const parts = ANATOMY_PARTS.filter((p) => values.some((v) => v.part === p));
  const policies = POLICIES.filter((p) => values.some((v) => v.policy === p));
  const batches = [...new Set(values.map((v) => v.batch))].sort((a, b) => a - b);
  const bars: Layer = {
    name: 'anatomy_bars',
    mark: { type: 'bar', strokeWidth: 1.5, aria: false },
    encoding: {
      x: { field: 'batch', type: 'ordinal', title: 'batch size', sort: batches, axis: { labelAngle: 0 } },
      xOffset: { field: 'policy', type: 'nominal', sort: policies, scale: { domain: policies, paddingInner: 0.15 } },
      y: { field: 'mb', type: 'quantitative', stack: 'zero', title: 'MB at the peak' },
      color: { field: 'part', type: 'nominal', title: 'part of the peak', scale: { domain: parts, range: parts.map((p) => ANATOMY_COLORS[p]) }, legend: { labelLimit: 260 } },
      stroke: policyColor(policies),
      order: { field: 'order', type: 'quantitative' },
    },
  };
  return {
    id: 'anatomy',
    title: 'What the peak is made of',
    caption:
      `At each batch size one bar per policy, left to right ${policies.join(', ')}, outlined in the policy's colour; its height is the peak of the first chart. ` +
      'Parameters, optimizer slots and accumulators are fp32 under every policy and live through the whole update, so they are exact at any moment. ' +
      "On torch rows the weight gradients are measured at the moment of the peak too; on tfjs rows the peak is modeled with TensorFlow's lifetimes, " +
      'and what the gradients, activations and the rest (input batch, 16-bit weight copies) hold at that moment is one remainder: the CSV records the largest ' +
      'activation total of the update (activations_peak_*), which need not be at the same moment.',
    spec: faceted(layout, values, [bars]),
  };
}

/** Bytes per part at the moment of the planning peak; the remainder is what no column attributes at that moment. */
export function anatomyOf(row: ResultRow, peakBytes: number): Array<[AnatomyPart, number]> {
  const parts: Array<[AnatomyPart, number]> = [
    ['parameters', row.paramsBytes ?? 0],
    ['optimizer slots', row.optimizerBytes ?? 0],
    ['accumulators', row.accumulatorBytes ?? 0],
  ];
  // torch measures its role bytes at the moment of its own peak (the planning peak); on tfjs they belong to the fp32
  // graph's peak, where only the state that lives through the whole update is the same.
  const hasGradients = isTorchRow(row) && row.gradsBytes !== null;
  if (hasGradients) parts.push(['weight gradients', row.gradsBytes!]);
  const known = parts.reduce((sum, [, bytes]) => sum + bytes, 0);
  parts.push([hasGradients ? 'activations & other' : 'gradients, activations & other', Math.max(0, peakBytes - known)]);
  return parts.sort(([a], [b]) => ANATOMY_PARTS.indexOf(a) - ANATOMY_PARTS.indexOf(b));
}

/** The largest batch that fits per model and policy (a column per model, a row per accumulation setting). */
function capacityChart(capacity: CapacityTable): ReportChart | null {
  const values = capacity.rows
    .filter((r) => r.maxBatchSize !== null)
    .map((r) => ({ panel: r.requestedBackend === 'auto' ? r.model : `${r.model} · ${r.requestedBackend}`, acc: `acc ${r.accumulationSteps}`, policy: r.policy, maxBatchSize: r.maxBatchSize }));
  if (values.length === 0) return null;
  const policies = POLICIES.filter((p) => values.some((v) => v.policy === p));
  const accs = [...new Set(capacity.rows.map((r) => r.accumulationSteps))].sort((a, b) => a - b).map((a) => `acc ${a}`);
  const header = { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelFontWeight: 'bold', labelFontSize: 12, labelLimit: PANEL_WIDTH };
  const spec = {
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null, header }, ...(accs.length > 1 ? { row: { field: 'acc', type: 'nominal', title: null, sort: accs, header } } : {}) },
    spec: {
      width: { step: 30 },
      height: PANEL_HEIGHT,
      layer: [
        {
          name: 'capacity_bars',
          mark: { type: 'bar', aria: false },
          encoding: {
            x: { field: 'policy', type: 'nominal', title: null, sort: policies, axis: { labelAngle: -40 } },
            y: { field: 'maxBatchSize', type: 'quantitative', title: 'largest batch that fits' },
            color: policyColor(policies),
          },
        },
      ],
    },
    config: CONFIG,
  };
  return {
    id: 'capacity',
    title: 'Largest batch that fits the budget',
    caption: `From ${capacity.source} (${capacityBasis(capacity)}): max_batch_size per model and policy; a search whose whole range fits shows its upper bound (is_range_limited).`,
    spec: spec as unknown as TopLevelSpec,
  };
}

function finite(value: number | null): number | null {
  return value === null || !Number.isFinite(value) ? null : value;
}

function hasData(spec: TopLevelSpec): boolean {
  const data = (spec as { data?: { values?: unknown[] } }).data;
  return (data?.values?.length ?? 0) > 0;
}

