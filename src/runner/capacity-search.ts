/**
 * The search for the largest micro batch whose peak fits a budget, given a way to probe one micro batch. Pure apart
 * from the injected `probe` (which, in `mpx run`, starts a fresh worker; in tests, looks a figure up), so the same
 * algorithm is tested against a brute-force scan.
 *
 * Memory grows with the batch as max(flat part, fixed + perSample × batch): the flat part is an update whose peak is
 * the optimizer, not the activations (the wide MLP up to batch 128). So:
 * 1. probe the smallest batch (nothing fits if it does not);
 * 2. predict the boundary from the two largest measured probes (a line: fixed + perSample × batch); where they show
 *    no growth yet, jump ×8 instead;
 * 3. once a probe does not fit, interpolate between the closest fitting and non-fitting measured probes, and bisect
 *    whenever an interpolation did not halve the bracket (a stopped probe has no full figure to interpolate with);
 * 4. finish when the largest fitting batch and the next one up have both been probed: the boundary is exact.
 * Every measured figure is checked for monotonicity (larger batch, no smaller peak); a violation is reported.
 */
import type { RecordedStatus } from './protocol.js';

export interface ProbeOutcome {
  status: RecordedStatus;
  /** The probe's peak in the search's metric, when it measured one (ok). */
  bytes: number | null;
  /** For `oom`: the bytes reached when the probe stopped (a lower bound of its peak). */
  reachedBytes: number | null;
  reason: string | null;
}

export interface ProbePoint {
  microBatchSize: number;
  outcome: ProbeOutcome;
  fits: boolean;
}

export interface CapacitySearchResult {
  /** `ok`: a boundary (or the whole range) was found; `oom`: not even the smallest batch fits; else a probe's failure. */
  status: RecordedStatus;
  reason: string | null;
  /** The largest micro batch that fits; null when none does. */
  maxMicroBatchSize: number | null;
  peakAtMaxBytes: number | null;
  /** The peak of the next micro batch up (null when it was stopped early, or the range ends at the max). */
  peakAboveMaxBytes: number | null;
  /** Every micro batch of the range fits. */
  isRangeLimited: boolean;
  /** The line through the two largest measured probes that fit: fixed bytes + bytes per micro-batch sample. */
  fit: { fixedBytes: number; bytesPerSample: number } | null;
  /** Probes in the order they ran. */
  probes: ProbePoint[];
  /** Pairs of probes whose figures fall as the batch grows, in words; empty when memory was monotonic. */
  monotonicityViolations: string[];
}

export interface SearchOptions {
  /** Stop after this many probes and report the bracket. @default 16 */
  maxProbes?: number;
}

export async function searchCapacity(
  range: { min: number; max: number },
  budgetBytes: number,
  probe: (microBatchSize: number) => ProbeOutcome | Promise<ProbeOutcome>,
  options: SearchOptions = {},
): Promise<CapacitySearchResult> {
  const maxProbes = options.maxProbes ?? 16;
  const probes: ProbePoint[] = [];
  /** `low`: the largest batch known to fit; `high`: the smallest known not to. */
  const bracket: { low: ProbePoint | null; high: ProbePoint | null } = { low: null, high: null };
  let shouldBisect = false;

  const result = (status: RecordedStatus, reason: string | null): CapacitySearchResult => {
    const { low, high } = bracket;
    const above = high !== null && low !== null && high.microBatchSize === low.microBatchSize + 1 ? high.outcome.bytes : null;
    return {
      status,
      reason,
      maxMicroBatchSize: low?.microBatchSize ?? null,
      peakAtMaxBytes: low?.outcome.bytes ?? null,
      peakAboveMaxBytes: above,
      isRangeLimited: low?.microBatchSize === range.max,
      fit: lineThrough(probes.filter((p) => p.fits)),
      probes,
      monotonicityViolations: findViolations(probes),
    };
  };

  /** Probes `m`; returns a failure result when the probe failed for a reason other than memory. */
  const probeAt = async (microBatchSize: number): Promise<CapacitySearchResult | null> => {
    const outcome = await probe(microBatchSize);
    if (outcome.status !== 'ok' && outcome.status !== 'oom') {
      probes.push({ microBatchSize, outcome, fits: false });
      return result(outcome.status, `the probe at micro batch ${microBatchSize} ended ${outcome.status}: ${outcome.reason ?? 'no reason given'}`);
    }
    const fits = outcome.status === 'ok' && outcome.bytes !== null && outcome.bytes <= budgetBytes;
    const point = { microBatchSize, outcome, fits };
    probes.push(point);
    if (fits && (bracket.low === null || microBatchSize > bracket.low.microBatchSize)) bracket.low = point;
    if (!fits && (bracket.high === null || microBatchSize < bracket.high.microBatchSize)) bracket.high = point;
    return null;
  };

  const first = await probeAt(range.min);
  if (first !== null) return first;
  if (bracket.low === null) return result('oom', `not even the smallest batch of the range fits: ${describe(probes[0]!, budgetBytes)}`);

  /** The micro batches still open: above the largest that fits, below the smallest that does not. */
  const open = (low: ProbePoint) => ({ lower: low.microBatchSize + 1, upper: bracket.high === null ? range.max : bracket.high.microBatchSize - 1 });
  for (let low = bracket.low; ; low = bracket.low!) {
    const { lower, upper } = open(low);
    if (lower > upper) return result('ok', null);
    if (probes.length >= maxProbes) {
      return result('ok', `stopped after ${maxProbes} probes with the boundary between micro batches ${low.microBatchSize} and ${upper + 1}`);
    }
    const width = upper - lower + 1;
    const guess = shouldBisect ? Math.floor((lower + upper) / 2) : predict(probes, low, bracket.high, budgetBytes);
    const failure = await probeAt(Math.min(upper, Math.max(lower, guess)));
    if (failure !== null) return failure;
    const after = open(bracket.low);
    // An interpolation that did not halve the bracket is followed by a bisection (regula falsi can crawl).
    shouldBisect = !shouldBisect && bracket.high !== null && after.upper - after.lower + 1 > width / 2;
  }
}

/**
 * The next micro batch to try: where a line predicts the boundary. Memory is convex in the batch (a max of straight
 * lines), so the line through the measured probes that do not fit (the smallest and the largest) is exact once both
 * are past the flat part, and is preferred; else the secant between the bracket's ends (which can only land short); else the line
 * through the two largest probes that fit; with no growth seen yet, ×8.
 */
function predict(probes: readonly ProbePoint[], low: ProbePoint, high: ProbePoint | null, budgetBytes: number): number {
  const above = probes.filter((p) => !p.fits && p.outcome.bytes !== null).sort((a, b) => a.microBatchSize - b.microBatchSize);
  const root = (line: { fixedBytes: number; bytesPerSample: number } | null) =>
    line !== null && line.bytesPerSample > 0 ? Math.floor((budgetBytes - line.fixedBytes) / line.bytesPerSample) : null;
  // The smallest and the largest: far apart, so allocator rounding (whole pages) hardly tilts the line.
  const fromAbove = root(above.length >= 2 ? lineThrough([above[0]!, above.at(-1)!]) : null);
  if (fromAbove !== null) return fromAbove;
  const highBytes = high?.outcome.bytes ?? null;
  if (high !== null && highBytes !== null && low.outcome.bytes !== null && highBytes > low.outcome.bytes) {
    const slope = (highBytes - low.outcome.bytes) / (high.microBatchSize - low.microBatchSize);
    return Math.floor(low.microBatchSize + (budgetBytes - low.outcome.bytes) / slope);
  }
  const fromBelow = root(lineThrough(probes.filter((p) => p.fits)));
  if (fromBelow !== null) return fromBelow;
  return high === null ? low.microBatchSize * 8 : Math.floor((low.microBatchSize + high.microBatchSize) / 2);
}

/** The line through the two largest of `points` with a measured figure; null with fewer than two. */
function lineThrough(points: readonly ProbePoint[]): { fixedBytes: number; bytesPerSample: number } | null {
  const measured = points.filter((p) => p.outcome.bytes !== null).sort((a, b) => a.microBatchSize - b.microBatchSize);
  if (measured.length < 2) return null;
  const [a, b] = measured.slice(-2) as [ProbePoint, ProbePoint];
  const bytesPerSample = (b.outcome.bytes! - a.outcome.bytes!) / (b.microBatchSize - a.microBatchSize);
  return { fixedBytes: a.outcome.bytes! - bytesPerSample * a.microBatchSize, bytesPerSample };
}

function findViolations(probes: readonly ProbePoint[]): string[] {
  const violations: string[] = [];
  const sorted = [...probes].sort((a, b) => a.microBatchSize - b.microBatchSize);
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const [small, large] = [sorted[i]!, sorted[j]!];
      if (large.fits && !small.fits) {
        violations.push(`micro batch ${large.microBatchSize} fits but ${small.microBatchSize} does not`);
      } else if (small.outcome.bytes !== null && large.outcome.bytes !== null && large.outcome.bytes < small.outcome.bytes) {
        violations.push(`micro batch ${large.microBatchSize} peaks at ${large.outcome.bytes} bytes, below the ${small.outcome.bytes} of micro batch ${small.microBatchSize}`);
      }
    }
  }
  return violations;
}

function describe(point: ProbePoint, budgetBytes: number): string {
  const { outcome, microBatchSize } = point;
  if (outcome.bytes !== null) return `micro batch ${microBatchSize} peaks at ${outcome.bytes} bytes, above the budget of ${budgetBytes}`;
  return `micro batch ${microBatchSize} stopped: ${outcome.reason ?? `it passed ${outcome.reachedBytes ?? '?'} bytes`}`;
}
