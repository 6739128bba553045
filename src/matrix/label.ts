import type { CellAxes } from '../spec/types.js';

/**
 * `mlp bs=128 mixed_float16 acc=4`, and the engine when the cell names one (`… acc=4 torch`): how a cell is named in
 * progress lines, diffs and reports.
 */
export function formatCellLabel(cell: CellAxes): string {
  const label = `${cell.model} bs=${cell.batchSize} ${cell.policy} acc=${cell.accumulationSteps}`;
  return cell.backend === 'auto' ? label : `${label} ${cell.backend}`;
}
