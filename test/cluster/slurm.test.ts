import { describe, expect, it } from 'vitest';
import {
  compressIndices,
  parseMaxArraySize,
  parseSbatchJobId,
  parseSqueue,
  planArrays,
  renderMergeScript,
  renderTaskScript,
  shardStatuses,
  type SlurmScriptOptions,
} from '../../src/cluster/slurm.js';
import { submissionKey } from '../../src/cluster/submission.js';

describe('what Slurm prints', () => {
  it('MaxArraySize from scontrol show config (Slurm 22.05 output)', () => {
    const text = 'Configuration data as of 2026-12-01T19:08:45\nAccountingStorageBackupHost = (null)\nMaxArraySize            = 1001\nMaxJobCount             = 10000\n';
    expect(parseMaxArraySize(text)).toBe(1001);
    expect(parseMaxArraySize('MaxJobCount = 10000\n')).toBeNull();
  });

  it('the job id of sbatch --parsable, with or without a cluster name', () => {
    expect(parseSbatchJobId('1234\n')).toBe('1234');
    expect(parseSbatchJobId('1234;cluster-a\n')).toBe('1234');
    expect(() => parseSbatchJobId('sbatch: error: Batch job submission failed\n')).toThrow(/printed no job id/);
  });

  it("squeue -h -r -o '%i|%F|%K|%T|%j' (recorded from Slurm 22.05: pending and running array tasks, a merge job)", () => {
    const text = ['1_2|1|2|PENDING|mpx-x', '1_3|1|3|PENDING|mpx-x', '3|3|N/A|PENDING|mpx-x-merge', '1_1|1|1|RUNNING|mpx-x', ''].join('\n');
    expect(parseSqueue(text)).toEqual([
      { id: '1_2', arrayJobId: '1', taskId: 2, state: 'PENDING', name: 'mpx-x' },
      { id: '1_3', arrayJobId: '1', taskId: 3, state: 'PENDING', name: 'mpx-x' },
      { id: '3', arrayJobId: '3', taskId: null, state: 'PENDING', name: 'mpx-x-merge' },
      { id: '1_1', arrayJobId: '1', taskId: 1, state: 'RUNNING', name: 'mpx-x' },
    ]);
  });
});

describe('planArrays', () => {
  it('one array when the shards fit MaxArraySize', () => {
    expect(planArrays([1, 2, 3, 4], 1001)).toEqual([{ offset: 0, shards: [1, 2, 3, 4], indices: '1-4' }]);
    expect(planArrays(Array.from({ length: 1000 }, (_, i) => i + 1), 1001)).toHaveLength(1);
  });

  it('splits larger sets into arrays whose indices stay below MaxArraySize, each with its offset', () => {
    const parts = planArrays(Array.from({ length: 2500 }, (_, i) => i + 1), 1001);
    expect(parts.map((p) => [p.offset, p.indices, p.shards.length])).toEqual([
      [0, '1-1000', 1000],
      [1000, '1-1000', 1000],
      [2000, '1-500', 500],
    ]);
    for (const part of parts) for (const shard of part.shards) expect(shard - part.offset).toBeLessThan(1001);
  });

  it('a resubmission of some shards: only those, ranges compressed', () => {
    expect(planArrays([7, 2, 3, 9, 4], 1001)).toEqual([{ offset: 0, shards: [2, 3, 4, 7, 9], indices: '2-4,7,9' }]);
    expect(planArrays([2, 3, 4], 3)).toEqual([
      { offset: 0, shards: [2], indices: '2' },
      { offset: 2, shards: [3, 4], indices: '1-2' },
    ]);
  });

  it('compressIndices', () => {
    expect(compressIndices([])).toBe('');
    expect(compressIndices([5])).toBe('5');
    expect(compressIndices([1, 2, 3, 5, 7, 8])).toBe('1-3,5,7-8');
  });
});

describe('scripts', () => {
  const options: SlurmScriptOptions = {
    jobName: 'mpx-seed',
    logsDir: '/shared/results/slurm/seed/logs',
    cwd: '/home/me/repo with space',
    node: '/usr/bin/node',
    cli: '/home/me/repo/dist/cli/main.js',
    specs: ['/home/me/repo/experiments/seed.yaml'],
    resultsDir: '/shared/results',
    shardCount: 8,
    taskOptions: ['--time=1:00:00', '--gpus-per-task=1'],
    mergeOptions: ['--time=1:00:00'],
    runArgs: ['--jobs', '1', '--filter', 'policy=float32|mixed_bfloat16'],
  };

  it('the task script runs one shard of mpx run with exec (signals reach mpx), its shard from the array index and offset', () => {
    expect(renderTaskScript(options)).toBe(
      [
        '#!/bin/bash',
        '# mpx slurm: one shard of /home/me/repo/experiments/seed.yaml per array task (written by mpx; submitted with sbatch --array)',
        '#SBATCH --job-name=mpx-seed',
        '#SBATCH --output=/shared/results/slurm/seed/logs/%A_%a.out',
        '#SBATCH --time=1:00:00',
        '#SBATCH --gpus-per-task=1',
        'set -eu',
        "cd '/home/me/repo with space'",
        'shard=$(( SLURM_ARRAY_TASK_ID + ${MPX_SHARD_OFFSET:-0} ))',
        '/usr/bin/node /home/me/repo/dist/cli/main.js run /home/me/repo/experiments/seed.yaml --shard "$shard/8" --results-dir /shared/results --jobs 1 --filter \'policy=float32|mixed_bfloat16\''.replace(/^/, 'exec '),
        '',
      ].join('\n'),
    );
  });

  it('the merge script runs mpx merge, without the GPU options', () => {
    const script = renderMergeScript(options);
    expect(script).toContain('#SBATCH --job-name=mpx-seed-merge\n#SBATCH --output=/shared/results/slurm/seed/logs/merge-%j.out\n#SBATCH --time=1:00:00\n');
    expect(script).not.toContain('gpus');
    expect(script).toMatch(/\nexec \/usr\/bin\/node \/home\/me\/repo\/dist\/cli\/main.js merge \/home\/me\/repo\/experiments\/seed.yaml --results-dir \/shared\/results\n$/);
  });

  it('submission keys name the specs, shortened with a hash when long', () => {
    expect(submissionKey(['seed'])).toBe('seed');
    expect(submissionKey(['b', 'a'])).toBe('a+b');
    const many = Array.from({ length: 20 }, (_, i) => `spec-number-${i}`);
    expect(submissionKey(many)).toMatch(/^spec-number-0\+19-more-[0-9a-f]{8}$/);
  });
});

describe('shardStatuses', () => {
  const arrays = [
    { jobId: '10', offset: 0, shards: [1, 2, 3, 4, 5] },
    { jobId: '20', offset: 0, shards: [3] }, // shard 3 resubmitted
  ];
  const count = (runs: number, finished: number, failed = 0, oom = 0) => ({ runs, finished, failed, oom });

  it('queued tasks are running or pending; the rest is told by the records', () => {
    const queue = parseSqueue('20_3|20|3|RUNNING|mpx-x\n10_5|10|5|PENDING|mpx-x\n');
    const statuses = shardStatuses([count(2, 2, 0, 1), count(2, 1, 1), count(2, 0), count(2, 1), count(2, 0), count(1, 0)], arrays, queue);
    expect(statuses.map((s) => [s.shard, s.state, s.task, s.missing])).toEqual([
      [1, 'done', '10_1', 0],
      [2, 'failed', '10_2', 0],
      [3, 'running', '20_3', 2],
      [4, 'missing', '10_4', 1],
      [5, 'pending', '10_5', 2],
      [6, 'missing', null, 1],
    ]);
    expect(statuses[0]!.oom).toBe(1);
  });
});
