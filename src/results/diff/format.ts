/** How the diff renderers write changes, noise bands and counts. Pure. */
import type { MetricDiff } from './compare.js';

/** `1 cell`, `2 cells`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
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
