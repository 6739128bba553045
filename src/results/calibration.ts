/**
 * How far mpx's runtime models are from a real runtime, read off one results table that ran the same cells on a tfjs
 * engine and on torch (`experiments/calibration/runtime.yaml`): each tfjs row's replayed peaks (TensorFlow's and
 * PyTorch's lifetimes) beside the torch row's measured peak. Pure: rows in, comparison and Markdown out; the README's
 * calibration table is this Markdown (`npm run docs`), so it cannot drift from the committed CSV.
 */
import type { ResultRow } from './aggregate.js';

/** One cell run on both engines. */
export interface RuntimeComparison {
  model: string;
  batchSize: number;
  policy: ResultRow['policy'];
  accumulationSteps: number;
  /** measured on the tfjs engine: the fp32 graph with tfjs's lifetimes. */
  tfjsPeakBytes: number;
  /** modeled: the policy's sizes with tfjs's lifetimes (peak_modeled_bytes). */
  tfjsModeledBytes: number;
  /** modeled: the policy's sizes with TensorFlow's lifetimes (peak_tf_modeled_bytes). */
  tfModeledBytes: number;
  /** modeled: the policy's sizes with PyTorch's lifetimes and holdings (peak_torch_modeled_bytes). */
  torchModeledBytes: number;
  /** measured by PyTorch on the torch row. */
  torchPeakBytes: number;
}

/**
 * Pairs every ok tfjs row with the ok torch row of the same cell (model, batch, policy, accumulation). Rows without
 * a partner, or without the figures (an older CSV), are left out: a comparison needs both sides measured.
 */
export function compareRuntimes(rows: readonly ResultRow[]): RuntimeComparison[] {
  const key = (row: ResultRow) => `${row.model}\u0000${row.batchSize}\u0000${row.policy}\u0000${row.accumulationSteps}`;
  const torchRows = new Map<string, ResultRow>();
  for (const row of rows) if (row.status === 'ok' && row.backends.includes('torch')) torchRows.set(key(row), row);
  const comparisons: RuntimeComparison[] = [];
  for (const row of rows) {
    if (row.status !== 'ok' || row.backends.includes('torch')) continue;
    const torch = torchRows.get(key(row));
    const figures = [row.peakBytes, row.peakModeledBytes, row.peakTfModeledBytes, row.peakTorchModeledBytes, torch?.peakBytes];
    if (torch === undefined || figures.some((value) => value === null || value === undefined)) continue;
    comparisons.push({
      model: row.model,
      batchSize: row.batchSize,
      policy: row.policy,
      accumulationSteps: row.accumulationSteps,
      tfjsPeakBytes: row.peakBytes!,
      tfjsModeledBytes: row.peakModeledBytes!,
      tfModeledBytes: row.peakTfModeledBytes!,
      torchModeledBytes: row.peakTorchModeledBytes!,
      torchPeakBytes: torch.peakBytes!,
    });
  }
  return comparisons;
}

/** Relative error of `modeled` against `measured`: +0.05 is 5 % above. */
export function relativeError(modeled: number, measured: number): number {
  return modeled / measured - 1;
}

/** The comparison as a Markdown table (MB = 10⁶ bytes), then one line per model with its error ranges. */
export function renderRuntimeCalibration(comparisons: readonly RuntimeComparison[]): string {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
  const pct = (ratio: number) => `${ratio >= 0 ? '+' : '−'}${Math.abs(ratio * 100).toFixed(1)} %`;
  const showsAccumulation = comparisons.some((c) => c.accumulationSteps !== 1);
  const lines = [
    `| model | batch | policy${showsAccumulation ? ' | acc.' : ''} | tfjs, measured (fp32 graph) | tfjs lifetimes, modeled | TensorFlow lifetimes, modeled | PyTorch lifetimes, modeled | torch, measured | TF-modeled vs torch | PyTorch-modeled vs torch |`,
    `| --- | ---: | --- |${showsAccumulation ? ' ---: |' : ''} ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ];
  for (const c of comparisons) {
    lines.push(
      `| ${c.model} | ${c.batchSize} | ${c.policy}${showsAccumulation ? ` | ${c.accumulationSteps}` : ''} | ${mb(c.tfjsPeakBytes)} | ${mb(c.tfjsModeledBytes)} | ` +
        `${mb(c.tfModeledBytes)} | ${mb(c.torchModeledBytes)} | ${mb(c.torchPeakBytes)} | ` +
        `${pct(relativeError(c.tfModeledBytes, c.torchPeakBytes))} | ${pct(relativeError(c.torchModeledBytes, c.torchPeakBytes))} |`,
    );
  }
  const models = [...new Set(comparisons.map((c) => c.model))];
  const range = (values: number[]) => {
    const low = Math.min(...values);
    const high = Math.max(...values);
    return low === high ? pct(low) : `${pct(low)} … ${pct(high)}`;
  };
  lines.push('');
  for (const model of models) {
    const mine = comparisons.filter((c) => c.model === model);
    const error = (pick: (c: RuntimeComparison) => number, among = mine) => range(among.map((c) => relativeError(pick(c), c.torchPeakBytes)));
    // tfjs measures the fp32 graph under every policy: against torch's real 16-bit peak it compares nothing.
    const float32 = mine.filter((c) => c.policy === 'float32');
    const measured = float32.length > 0 ? `tfjs measured ${error((c) => c.tfjsPeakBytes, float32)} (float32 rows), ` : '';
    lines.push(
      `- **${model}** against torch's measured peak: ${measured}tfjs-lifetimes model ${error((c) => c.tfjsModeledBytes)}, ` +
        `TensorFlow-lifetimes model ${error((c) => c.tfModeledBytes)}, PyTorch-lifetimes model ${error((c) => c.torchModeledBytes)}.`,
    );
  }
  return lines.join('\n');
}
