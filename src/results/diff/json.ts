/**
 * `mpx diff --format json`: the whole `DiffResult` for tools. Numbers stay numbers; JSON has no NaN or Infinity, so
 * those are written as the strings `"nan"`, `"inf"`, `"-inf"` (as the CSV writes them). Returns the text; never writes.
 */
import { formatNonFinite } from '../columns.js';
import type { DiffResult } from './compare.js';

/** Bumped when a field is renamed or removed (adding fields does not bump it). */
export const DIFF_JSON_VERSION = 1;

export function renderDiffJson(result: DiffResult): string {
  const replacer = (_key: string, value: unknown): unknown => (typeof value === 'number' && !Number.isFinite(value) ? formatNonFinite(value) : value);
  return `${JSON.stringify({ version: DIFF_JSON_VERSION, ...result }, replacer, 2)}\n`;
}
