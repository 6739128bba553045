/** Spec- and results-provided strings that try to escape every place a report puts them. */
import type { ReportInput } from '../../../src/results/report/index.js';
import { fixtureInput } from './fixture.js';

export const HOSTILE_DESCRIPTION = '</script><img src=x onerror=alert(1)>';

/** What the hostile report's description says: the string plus Markdown and Mermaid tricks. */
export const HOSTILE_DESCRIPTION_FULL =
  `${HOSTILE_DESCRIPTION} <script>alert(2)</script> <svg onload=alert(3)> ` +
  '\n# not a heading\n```mermaid\nxychart-beta\n```\n[click](javascript:alert(4)) | a | b | ![x](https://example.com/x.png) %%{init: {}}%%';

/** Model names that are Mermaid syntax (a spec allows `x-axis`, `xychart-beta`; a results CSV allows anything). */
export const HOSTILE_MODELS = {
  'wide-mlp': 'x-axis',
  cnn: '"] line [1, 2]\n%%{init: {"theme": "dark"}}%%\n</text><script>alert(5)</script>`|*_',
} as const;

export function hostileInput(): ReportInput {
  const input = fixtureInput({ description: HOSTILE_DESCRIPTION_FULL });
  const rows = input.table.rows.map((row) => ({ ...row, model: HOSTILE_MODELS[row.model as keyof typeof HOSTILE_MODELS] ?? row.model }));
  const metadata = input.table.metadata === null ? null : { ...input.table.metadata, backends: [...input.table.metadata.backends], os: '<img src=y onerror=alert(6)>' };
  const rename = <R extends { model: string }>(row: R): R => ({ ...row, model: HOSTILE_MODELS[row.model as keyof typeof HOSTILE_MODELS] ?? row.model });
  const capacity = input.capacity === null ? null : { ...input.capacity, rows: input.capacity.rows.map(rename), source: 'results/<i>hostile</i>.capacity.csv' };
  return { ...input, table: { ...input.table, name: 'hostile', source: 'results/<b>hostile</b>.csv', rows, metadata }, capacity };
}
