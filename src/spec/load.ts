/**
 * Reads a spec file: size and encoding limits, YAML with positions, resource limits (depth, aliases), then schema
 * validation (`validate.ts`) and resolution (`resolve.ts`). Every failure is an MpxError pointing at file:line:col.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { MpxError } from '../errors.js';
import { locateProblems, SpecProblems, type SpecLocator } from './locator.js';
import { resolveSpec } from './resolve.js';
import type { ExperimentSpec } from './types.js';
import { validateSpecData } from './validate.js';
import { parseSpecYaml } from './yaml.js';

/** Specs are hand-written; anything bigger is a mistake (or an attack on the parser). */
export const MAX_SPEC_BYTES = 1024 * 1024;

/** A resolved spec and the locator that maps its paths back to its file (for errors found by later stages). */
export interface LoadedSpec {
  spec: ExperimentSpec;
  locator: SpecLocator;
}

/** Reads, parses, validates and resolves one spec file. */
export async function loadSpec(file: string): Promise<LoadedSpec> {
  let size: number;
  try {
    const stats = await stat(file);
    if (stats.isDirectory()) {
      throw new MpxError('NOT_A_FILE', 'is a directory, not a spec file', {
        file,
        hint: `pass the spec files inside it, e.g. ${file.replace(/\/+$/, '')}/*.yaml`,
      });
    }
    if (!stats.isFile()) {
      throw new MpxError('NOT_A_FILE', 'is not a regular file', { file, hint: 'pass a .yaml spec file' });
    }
    size = stats.size;
  } catch (error) {
    throw readFailure(file, error);
  }
  if (size > MAX_SPEC_BYTES) throw tooLarge(file, size);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw readFailure(file, error);
  }
  return loadSpecText(bytes, file);
}

function readFailure(file: string, error: unknown): MpxError {
  if (error instanceof MpxError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new MpxError('FILE_NOT_FOUND', 'file not found', {
      file,
      hint: `check the path; relative paths start from ${process.cwd()}`,
      cause: error,
    });
  }
  if (code === 'EISDIR') {
    return new MpxError('NOT_A_FILE', 'is a directory, not a spec file', { file, cause: error });
  }
  const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : String((error as Error).message);
  return new MpxError('FILE_NOT_FOUND', `cannot read the file: ${reason}`, { file, cause: error });
}

function tooLarge(file: string, bytes: number): MpxError {
  return new MpxError('SPEC_LIMIT', `the file is ${bytes} bytes; a spec may be at most ${MAX_SPEC_BYTES} bytes (1 MiB)`, {
    file,
    hint: 'is this the right file? a spec is a short YAML file of settings',
  });
}

/**
 * Parses, validates and resolves spec text. Pure apart from hashing: `file` is used only in messages and `spec.file`.
 * Throws MpxError (with every problem found in the same pass in `related`).
 * Parses, validates and resolves spec text. Pure apart from hashing: `file` is used only in messages and `spec.file`.
 * Throws MpxError (with every problem found in the same pass in `related`).
 */
export function loadSpecText(text: string | Uint8Array, file: string): LoadedSpec {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
  if (bytes.length > MAX_SPEC_BYTES) throw tooLarge(file, bytes.length);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const { data, locator } = parseSpecYaml(text, file);
  const problems = validateSpecData(data);
  if (problems.length > 0) throw locateProblems(problems, locator);
  try {
    return { spec: resolveSpec(data, { file, sha256 }), locator };
  } catch (error) {
    if (error instanceof SpecProblems) throw locateProblems(error.problems, locator);
    throw error;
  }
}
