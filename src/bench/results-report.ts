/**
 * Time to report a 1,000-row results CSV, as `mpx report` does it: parse the CSV, summarize, render the Markdown and
 * the HTML (Vega-Lite compiled and rendered to SVG; the first call also imports vega and vega-lite). The CSV is
 * generated (deterministic) through the real exporter, so it is a CSV `mpx run` could have written.
 */
import type { ResultRow } from '../results/aggregate.js';
import { COLUMNS } from '../results/columns.js';
import { csvExporter } from '../results/export/index.js';
import { renderHtmlReport } from '../results/report/html.js';
import { renderMarkdownReport } from '../results/report/markdown.js';
import { summarizeResults } from '../results/report/summary.js';
import { renderTerminalSummary } from '../results/report/terminal.js';
import { blankRow, parseResultsCsv } from '../results/table.js';
import { POLICIES } from '../spec/types.js';

export const REPORT_ROWS = 1000;
/** The budget of the generated spec: the largest models run out of memory at their largest batch sizes. */
const BUDGET_BYTES = 150e6;

export interface ReportTiming {
  rows: number;
  /** The first report in this process (imports vega and vega-lite, cold JIT: what `mpx report` pays), in ms. */
  firstMs: number;
  /** Best of the repeats after it, in ms. */
  warmMs: number;
  htmlBytes: number;
  markdownBytes: number;
}

export async function measureReport(repeats = 3): Promise<ReportTiming> {
  const csv = csvExporter.render(syntheticRows(REPORT_ROWS), COLUMNS);
  const times: number[] = [];
  let sizes = { html: 0, markdown: 0 };
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    const table = parseResultsCsv(csv, 'bench-report', 'bench-report.csv');
    const input = { table, description: 'A generated 1,000-row results CSV.', specFile: null, budgetBytes: BUDGET_BYTES, capacity: null };
    renderTerminalSummary(summarizeResults(table.name, table.rows));
    const markdown = renderMarkdownReport(input);
    const html = await renderHtmlReport(input);
    times.push(performance.now() - started);
    sizes = { html: Buffer.byteLength(html), markdown: Buffer.byteLength(markdown) };
  }
  return { rows: REPORT_ROWS, firstMs: times[0]!, warmMs: Math.min(...times.slice(1)), htmlBytes: sizes.html, markdownBytes: sizes.markdown };
}

/**
 * 12 models × 7 batch sizes × 3 policies × 4 accumulation settings (the first 1,000): peaks that grow with the batch,
 * mixed policies saving on the larger models, a few oom and failed cells.
 */
export function syntheticRows(count: number): ResultRow[] {
  const rows: ResultRow[] = [];
  for (let model = 0; rows.length < count; model++) {
    for (const accumulationSteps of [1, 2, 4, 8]) {
      for (const [p, policy] of POLICIES.entries()) {
        for (const batchSize of [8, 16, 32, 64, 128, 256, 512]) {
          if (rows.length === count) return rows;
          const fixed = 4e6 * (model + 1);
          const perSample = 2e4 * (model + 1) * (p === 0 ? 1 : 0.55);
          const peak = fixed + (perSample * batchSize) / accumulationSteps;
          const status = peak > BUDGET_BYTES ? 'oom' : (rows.length * 7) % 97 === 0 ? 'failed' : 'ok';
          const isOk = status === 'ok';
          rows.push({
            ...blankRow(),
            cellIndex: rows.length,
            cellId: rows.length.toString(16).padStart(16, '0'),
            model: `model-${model}`,
            batchSize,
            microBatchSize: batchSize / accumulationSteps,
            policy,
            accumulationSteps,
            backends: ['wasm'],
            precisions: isOk ? [p === 0 ? 'native' : 'emulated'] : [],
            devices: isOk ? ['cpu'] : [],
            status,
            runsOk: isOk ? 1 : 0,
            runsPlanned: 1,
            reason: isOk ? null : status === 'oom' ? 'over the memory budget' : 'Error: generated failure',
            paramCount: 1e6 * (model + 1),
            stepMs: isOk ? 2 + batchSize * 0.05 * (1 + p * 0.1) : null,
            samplesPerSecond: isOk ? batchSize / ((2 + batchSize * 0.05) / 1000) : null,
            initialLoss: isOk ? 2.3 : null,
            finalLoss: isOk ? 2.3 - 0.001 * batchSize : null,
            evalAccuracy: isOk ? 0.1 + 0.001 * batchSize : null,
            paramsBytes: isOk ? fixed / 4 : null,
            gradsBytes: isOk ? fixed / 4 : null,
            optimizerBytes: isOk ? fixed / 2 : null,
            accumulatorBytes: isOk ? (accumulationSteps > 1 ? fixed / 4 : 0) : null,
            activationsPeakBytes: isOk ? perSample * batchSize : null,
            peakBytes: isOk ? peak * 1.5 : null,
            restingBytes: isOk ? (fixed * 3) / 4 : null,
            peakModeledBytes: isOk ? peak * 1.2 : null,
            activationsPeakModeledBytes: isOk ? perSample * batchSize : null,
            peakTfModeledBytes: isOk ? peak : null,
            activationsPeakTfModeledBytes: isOk ? (perSample * batchSize) / accumulationSteps : null,
            peakTorchModeledBytes: isOk ? peak * 1.05 : null,
            rssPeakBytes: isOk ? peak * 3 : null,
            wasmHeapBytes: isOk ? peak * 2 : null,
            oomReachedBytes: status === 'oom' ? peak : null,
          });
        }
      }
    }
  }
  return rows;
}
