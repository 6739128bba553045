/** The two summaries mpx reports of repeated measurements: median and spread (max − min). Pure. */

/** The statistical median (mean of the two middle values for an even count); NaN if any value is NaN; null if empty. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  if (values.some(Number.isNaN)) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const upper = sorted[mid]!;
  if (sorted.length % 2 === 1) return upper;
  const lower = sorted[mid - 1]!;
  // Halving first keeps two huge finite values from overflowing to Infinity.
  return lower === upper ? upper : lower / 2 + upper / 2;
}

/** max − min; NaN if any value is NaN; 0 when all values are equal (also for equal infinities); null if empty. */
export function range(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  if (values.some(Number.isNaN)) return Number.NaN;
  const max = Math.max(...values);
  const min = Math.min(...values);
  return max === min ? 0 : max - min;
}
