/** CSV for committing and diffing: header = column names, `\n` line endings, fields quoted only when needed. */
import { stringify } from 'csv-stringify/sync';
import type { Exporter } from './index.js';

export const csvExporter: Exporter = {
  extension: 'csv',
  render(rows, columns) {
    const header = columns.map((c) => c.name);
    const body = rows.map((row) => columns.map((c) => c.format(row)));
    return stringify([header, ...body], { record_delimiter: 'unix' });
  },
};
