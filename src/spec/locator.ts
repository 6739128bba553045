/**
 * Problems in a spec, and the one place they get a file:line:col. Pure stages (schema validation, resolution, matrix
 * planning) describe a problem by its path in the spec's data (`['matrix', 'include', 0, 'model']`); the edge that
 * holds the YAML document maps paths to positions with a `SpecLocator` and turns the problems into one MpxError.
 * So the spec itself stays plain data, and every stage names places the same way.
 */
import { MpxError, type MpxErrorCode } from '../errors.js';

export type SpecPath = ReadonlyArray<string | number>;

/** One thing wrong with a spec, located by its path in the spec's data. */
export interface SpecProblem {
  path: SpecPath;
  message: string;
  hint?: string;
  /** Point at the key of the last path element rather than its value (unknown keys). */
  atKey?: boolean;
  /** @default 'SPEC_INVALID' */
  code?: MpxErrorCode;
}

/** Thrown by the pure stages with every problem they found in one pass; the edge locates them (`locateProblems`). */
export class SpecProblems extends Error {
  constructor(readonly problems: readonly SpecProblem[]) {
    super(problems.map((p) => p.message).join('; '));
    this.name = 'SpecProblems';
  }
}

/** Throws SpecProblems when there is any problem. */
export function throwIfProblems(problems: readonly SpecProblem[]): void {
  if (problems.length > 0) throw new SpecProblems(problems);
}

/** Maps paths of a spec's data to 1-based positions in its file. */
export interface SpecLocator {
  readonly file: string;
  /**
   * The position of the node at `path`, or of its nearest ancestor that exists (a missing key points at its map, a
   * default the YAML never wrote at the top of the file); `atKey` points at the key of the last map entry.
   */
  position(path: SpecPath, atKey?: boolean): { line: number; col: number } | undefined;
}

/** One MpxError for all `problems`: the first by position, the others as `related`, each distinct place and message once. */
export function locateProblems(problems: readonly SpecProblem[], locator: SpecLocator): MpxError {
  const errors = problems.map((p) => {
    const at = locator.position(p.path, p.atKey);
    return new MpxError(p.code ?? 'SPEC_INVALID', p.message, { file: locator.file, line: at?.line, col: at?.col, hint: p.hint });
  });
  return combineErrors(errors);
}

/** The first error (files in their order, then by position) with the others, duplicates dropped, as its `related` ones. */
export function combineErrors(errors: readonly MpxError[]): MpxError {
  const seen = new Set<string>();
  const unique = errors.filter((e) => {
    const key = `${e.file}:${e.line}:${e.col}:${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  // Files in the order they came; within a file, by position.
  const fileOrder = new Map<string | undefined, number>();
  for (const e of unique) if (!fileOrder.has(e.file)) fileOrder.set(e.file, fileOrder.size);
  unique.sort(
    (a, b) =>
      fileOrder.get(a.file)! - fileOrder.get(b.file)! || (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0) || a.message.localeCompare(b.message),
  );
  const [first, ...rest] = unique;
  if (first === undefined) throw new Error('combineErrors() without errors; this is a bug');
  return new MpxError(first.code, first.message, {
    file: first.file,
    line: first.line,
    col: first.col,
    hint: first.hint,
    related: rest.flatMap((e) => [withoutRelated(e), ...e.related]),
  });
}

function withoutRelated(error: MpxError): MpxError {
  return error.related.length === 0 ? error : new MpxError(error.code, error.message, { file: error.file, line: error.line, col: error.col, hint: error.hint });
}

/** `matrix.include[0].policy`; the root is "the spec". */
export function formatPath(path: SpecPath): string {
  if (path.length === 0) return 'the spec';
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}
