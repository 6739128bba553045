/**
 * What `mpx slurm` remembers between calls, in `<results-dir>/slurm/<key>/submission.json`: the shard count (so a
 * resubmission partitions the runs as the first submission did) and every array and merge job it submitted (so
 * `mpx slurm status` can find their tasks in the queue). The directory also holds the scripts and the task logs, and
 * a `.gitignore` of `*`, so committing the results directory never commits them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MpxError } from '../errors.js';
import { writeFileAtomic } from '../results/store.js';
import type { SubmittedArray } from './slurm.js';

export interface SubmissionRecord {
  mpxSlurm: 1;
  /** The spec names, sorted. */
  specs: string[];
  /** The shard count every task of this key uses. */
  shards: number;
  submissions: Array<{ date: string; arrays: SubmittedArray[]; mergeJobId: string | null }>;
}

/** A directory name for a set of specs: the name of one, the sorted names joined with `+`, shortened with a hash. */
export function submissionKey(specNames: readonly string[]): string {
  const names = [...specNames].sort();
  const joined = names.join('+');
  if (joined.length <= 60) return joined;
  const hash = createHash('sha256').update(joined).digest('hex').slice(0, 8);
  return `${names[0]!.slice(0, 40)}+${names.length - 1}-more-${hash}`;
}

export function submissionDir(resultsDir: string, key: string): string {
  return join(resultsDir, 'slurm', key);
}

export function readSubmission(dir: string): SubmissionRecord | null {
  let text: string;
  try {
    text = readFileSync(join(dir, 'submission.json'), 'utf8');
  } catch {
    return null;
  }
  try {
    const value = JSON.parse(text) as SubmissionRecord;
    if (value.mpxSlurm !== 1 || typeof value.shards !== 'number' || !Array.isArray(value.submissions)) throw new Error('not a submission record');
    return value;
  } catch (error) {
    throw new MpxError('RESULTS_IO', `cannot read ${join(dir, 'submission.json')}: ${error instanceof Error ? error.message : String(error)}`, {
      file: join(dir, 'submission.json'),
      hint: 'delete it to start over (mpx slurm then submits every shard whose runs are not recorded)',
    });
  }
}

/** Creates the directory (and its logs/ and .gitignore) and writes the record atomically. */
export function writeSubmission(dir: string, record: SubmissionRecord): void {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  writeFileSync(join(dir, '.gitignore'), '# written by mpx slurm: scripts, logs and job ids of this machine\'s submissions\n*\n');
  writeFileAtomic(join(dir, 'submission.json'), `${JSON.stringify(record, null, 2)}\n`);
}
