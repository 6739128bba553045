/**
 * Exporters turn result rows into the bytes of one file and return them; they never write (hyperfine
 * `src/export/mod.rs`: exporters return bytes, `ExportManager` writes). `store.ts` is the one place that writes.
 */
import type { Column } from '../columns.js';

export interface Exporter {
  /** File extension without the dot: the store writes `<spec name>.<extension>`. */
  extension: string;
  /** The whole file, rows in the given order, columns in the given order. */
  render<R>(rows: readonly R[], columns: readonly Column<R>[]): string;
}

export { csvExporter } from './csv.js';
