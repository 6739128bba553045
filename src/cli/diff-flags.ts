/**
 * `mpx diff`'s threshold and noise flags: `--fail-on <metric>:<threshold>` and `--tolerance <metric or kind>=<amount>`,
 * parsed before any git work so that a typo in a gate fails at once and never passes silently.
 */
import { MpxError } from '../errors.js';
import { CAPACITY_COLUMNS } from '../results/capacity.js';
import { METRIC_COLUMNS, NOISE_KINDS } from '../results/columns.js';
import type { FailOnRule, Tolerance } from '../results/diff/compare.js';
import { didYouMean } from '../util/did-you-mean.js';

/** Metrics of run matrices and of capacity searches (`max_batch_size:-1`); a name in both means the same thing in both. */
const METRICS = [...new Set([...METRIC_COLUMNS, ...CAPACITY_COLUMNS.filter((c) => c.noise !== null)].map((c) => c.name))];
const AMOUNT = /^([+-]?)(\d+(?:\.\d+)?(?:e[+-]?\d+)?)(%?)$/i;

/** Other names people use for a metric column: camelCase and `_per_second`. */
export function canonicalMetricName(name: string): string {
  return name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/_per_second$/, '_per_s');
}

function resolveMetric(name: string, names: readonly string[], flag: string, text: string): string {
  const metric = canonicalMetricName(name);
  if (names.includes(metric)) return metric;
  throw new MpxError('USAGE', `${flag} ${text}: "${name}" is not a metric (metrics: ${names.join(', ')})`, {
    hint: didYouMean(metric, names),
  });
}

/**
 * `<metric>:<threshold>`: `peak_bytes:+5%` fails when peak_bytes rises more than 5%, `samples_per_s:-10%` when it
 * falls more than 10%, `final_loss:0.01` (no sign) when it moves more than 0.01 either way. Throws MpxError USAGE.
 */
export function parseFailOn(text: string): FailOnRule {
  const colon = text.lastIndexOf(':');
  const amount = AMOUNT.exec(colon < 0 ? '' : text.slice(colon + 1).trim());
  if (colon <= 0 || amount === null) {
    throw new MpxError('USAGE', `--fail-on ${text}: expected <metric>:<threshold>, e.g. peak_bytes:+5% or samples_per_s:-10%`, {
      hint: 'a leading + fails on increases, - on decreases, no sign on both; % makes it relative to the base value',
    });
  }
  const metric = resolveMetric(text.slice(0, colon), METRICS, '--fail-on', text);
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
export function parseTolerance(text: string): [string, Tolerance] {
  const eq = text.lastIndexOf('=');
  const amount = AMOUNT.exec(eq < 0 ? '' : text.slice(eq + 1).trim());
  if (eq <= 0 || amount === null || amount[1] !== '') {
    throw new MpxError('USAGE', `--tolerance ${text}: expected <metric or kind>=<amount>, e.g. timing=25% or final_loss=1e-4`, {
      hint: `kinds: ${NOISE_KINDS.join(', ')}; an amount with % is relative to the base value`,
    });
  }
  const name = text.slice(0, eq).trim();
  const key = (NOISE_KINDS as readonly string[]).includes(name) ? name : resolveMetric(name, [...METRICS, ...NOISE_KINDS], '--tolerance', text);
  const value = Number(amount[2]);
  return [key, amount[3] === '%' ? { relative: value / 100, absolute: 0 } : { relative: 0, absolute: value }];
}
