/**
 * The one error type mpx shows to people. It carries data (where, what, how to fix) and is rendered once, at the
 * edge, by the CLI — the way ESLint's errors carry a template and data and `bin/eslint.js` renders them.
 */
export type MpxErrorCode =
  | 'YAML_SYNTAX' // the file is not valid YAML
  | 'SPEC_INVALID' // schema or cross-field validation failed
  | 'SPEC_LIMIT' // file too large, too deep, alias bomb
  | 'FILE_NOT_FOUND'
  | 'NOT_A_FILE'
  | 'NO_MATCH' // a glob matched nothing
  | 'MATRIX_TOO_LARGE'
  | 'BACKEND_UNAVAILABLE'
  | 'USAGE' // bad command-line usage
  | 'RESULTS_IO' // results directory cannot be written
  | 'RESULTS_LOCKED' // another mpx run uses the results directory
  | 'SCHEDULER'; // the cluster's scheduler (Slurm) is missing or refused a job

export interface MpxErrorLocation {
  file?: string;
  /** 1-based line */
  line?: number;
  /** 1-based column */
  col?: number;
}

export interface MpxErrorOptions extends MpxErrorLocation {
  hint?: string;
  cause?: unknown;
  /** Further problems found in the same pass, reported together (e.g. every schema error of a file). */
  related?: MpxError[];
}

export class MpxError extends Error {
  readonly code: MpxErrorCode;
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
  readonly hint?: string;
  readonly related: MpxError[];

  constructor(code: MpxErrorCode, message: string, options: MpxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MpxError';
    this.code = code;
    this.file = options.file;
    this.line = options.line;
    this.col = options.col;
    this.hint = options.hint;
    this.related = options.related ?? [];
  }

  /** `file:line:col` (as much of it as is known), the prefix editors and terminals turn into links. */
  get where(): string {
    if (this.file === undefined) return '';
    if (this.line === undefined) return this.file;
    return this.col === undefined ? `${this.file}:${this.line}` : `${this.file}:${this.line}:${this.col}`;
  }
}

/** Renders one error (and its related ones) for a terminal: `file:line:col: message` then `  hint: …`. */
export function formatMpxError(error: MpxError): string {
  const lines: string[] = [];
  for (const e of [error, ...error.related]) {
    const where = e.where;
    lines.push(where ? `${where}: ${e.message}` : e.message);
    if (e.hint) lines.push(`  hint: ${e.hint}`);
  }
  return lines.join('\n');
}

export function isMpxError(value: unknown): value is MpxError {
  return value instanceof MpxError;
}
