/**
 * Reports of one spec's results: `<name>.md` (GitHub renders it, Mermaid charts included) and `<name>.html` (one
 * self-contained file with Vega-Lite charts rendered to inline SVG). Like the exporters, renderers return the text
 * and never write; `store.ts` writes it. Pure apart from the clock-free chart rendering.
 */
import type { ResultTable } from '../table.js';
import type { CapacityTable } from './capacity.js';

export interface ReportInput {
  /**
   * The run matrix's results: rows, metadata (`meta.json`; null when absent), where they were read. A spec that only
   * searches capacity has an empty table here (its name, source and metadata those of the capacity CSV).
   */
  table: ResultTable;
  /** The spec's `description`; null when the spec was not found. */
  description: string | null;
  /** The spec file the results came from, as the metadata names it; null when unknown. */
  specFile: string | null;
  /** The budget drawn on the charts (the spec's memoryLimit or `--budget`); null for none. */
  budgetBytes: number | null;
  /** `<name>.capacity.csv`, the spec's capacity searches; null when it has none. */
  capacity: CapacityTable | null;
}

export interface ReportRenderer {
  /** File extension without the dot: the report is `<spec name>.<extension>`. */
  extension: string;
  render(input: ReportInput): Promise<string>;
}

export { markdownReport } from './markdown.js';
export { htmlReport } from './html.js';
