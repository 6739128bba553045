import type { CellAxes } from '../spec/types.js';

/** `mlp bs=128 mixed_float16 acc=4`: how a cell is named in progress lines, diffs and reports. */
export function formatCellLabel(cell: CellAxes): string {
  return `${cell.model} bs=${cell.batchSize} ${cell.policy} acc=${cell.accumulationSteps}`;
}
