/**
 * Turns the spec arguments of a command into files. Arguments may be paths or globs: shells expand unquoted globs,
 * quoted ones (and shells that do not expand, like cmd.exe) are expanded here.
 */
import { stat } from 'node:fs/promises';
import { glob, isDynamicPattern } from 'tinyglobby';
import { MpxError } from '../errors.js';

export async function resolveSpecFiles(args: string[]): Promise<string[]> {
  if (args.length === 0) {
    throw new MpxError('USAGE', 'no spec files given', { hint: 'name one or more specs, e.g. mpx run experiments/*.yaml' });
  }
  const files: string[] = [];
  for (const arg of args) {
    if (isDynamicPattern(arg)) {
      const matches = (await glob(arg, { onlyFiles: true, expandDirectories: false })).sort();
      if (matches.length === 0) {
        throw new MpxError('NO_MATCH', `the pattern ${arg} matches no file`, {
          hint: 'check the pattern and the current directory; quote it to let mpx expand it',
        });
      }
      files.push(...matches);
    } else {
      files.push(arg);
    }
  }
  return [...new Set(files)];
}

/** Fails early with a clear message for a missing path or a directory (the loader says the same per file). */
export async function assertReadableFile(file: string): Promise<void> {
  const info = await stat(file).catch(() => null);
  if (!info) throw new MpxError('FILE_NOT_FOUND', `${file} does not exist`, { hint: 'check the path' });
  if (!info.isFile()) {
    throw new MpxError('NOT_A_FILE', `${file} is not a file`, { hint: `to run every spec in it: mpx run ${file}/*.yaml` });
  }
}
