/**
 * The Slurm commands `mpx slurm` runs: `sbatch --parsable`, `squeue`, `scontrol show config`. They use the
 * environment as it is (`SLURM_CONF`, the user's defaults). Failures are MpxError SCHEDULER (exit 2) with what Slurm
 * said.
 */
import { userInfo } from 'node:os';
import { execa } from 'execa';
import { MpxError } from '../errors.js';
import { DEFAULT_MAX_ARRAY_SIZE, parseMaxArraySize, parseSbatchJobId, parseSqueue, SQUEUE_FORMAT, type QueuedJob } from './slurm.js';

const SLURM_TIMEOUT_MS = 60_000;

async function slurm(command: string, args: readonly string[]): Promise<string> {
  const result = await execa(command, args, { reject: false, timeout: SLURM_TIMEOUT_MS, stdin: 'ignore' });
  if (result.failed && result.exitCode === undefined && /ENOENT/.test(String(result.message))) {
    throw new MpxError('SCHEDULER', `${command} is not installed (or not on PATH): mpx slurm needs Slurm's commands`, {
      hint: 'run mpx slurm on a login node of the cluster; elsewhere, run shards yourself with mpx run --shard i/n',
    });
  }
  if (result.failed) {
    const said = String(result.stderr).trim() || String(result.stdout).trim() || String(result.message);
    throw new MpxError('SCHEDULER', `${command} ${args.join(' ')} failed: ${said}`, {
      hint: 'check the options Slurm names (partition, time limit, GPUs); mpx slurm --dry-run prints the scripts without submitting',
    });
  }
  return String(result.stdout);
}

/** Submits a batch script; returns the job id. */
export async function sbatch(args: readonly string[]): Promise<string> {
  return parseSbatchJobId(await slurm('sbatch', ['--parsable', ...args]));
}

/** The cluster's MaxArraySize; Slurm's default when `scontrol` does not say. */
export async function readMaxArraySize(): Promise<number> {
  return parseMaxArraySize(await slurm('scontrol', ['show', 'config'])) ?? DEFAULT_MAX_ARRAY_SIZE;
}

/** This user's queued jobs with these names (array tasks one by one). */
export async function listQueue(jobNames: readonly string[]): Promise<QueuedJob[]> {
  return parseSqueue(await slurm('squeue', ['-h', '-r', `--name=${jobNames.join(',')}`, `--user=${userInfo().username}`, '-o', SQUEUE_FORMAT]));
}
