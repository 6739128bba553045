/**
 * A real single-node Slurm for tests, started in a second or two and stopped afterwards: munged, slurmctld and slurmd
 * as root with everything in a private directory (munge key and socket, state, spool, logs, slurm.conf) and ports
 * found free at start, so a test never touches a real installation. No accounting database (there is no `sacct`):
 * progress is read from the results the tasks write and from `squeue`. Two fake GPUs — character devices in the
 * private directory, as Slurm's gres/gpu insists on device files — let `--gres=gpu:1` tasks get `CUDA_VISIBLE_DEVICES`.
 *
 * `startSlurm` resolves to `{ skipped: reason }` when Slurm cannot start here (not installed, not root), so the tests
 * can skip with that reason in their titles; CI installs slurm-wlm and munge (`.ci/run`), so it starts there.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

export interface SlurmCluster {
  dir: string;
  /** The environment client commands need: `SLURM_CONF`. */
  env: Record<string, string>;
  /** MaxArraySize of this cluster (small, so that arrays are split). */
  maxArraySize: number;
  /** Whether fake GPUs could be made (`--gres=gpu:1` works). */
  hasGpus: boolean;
  /** Runs a Slurm client command with this cluster's environment; stdout. */
  run(command: string, args: string[]): string;
  stop(): Promise<void>;
}

export interface SlurmOptions {
  /** CPUs the node offers (more than the machine has: slurmd accepts it with config_overrides). @default 4 */
  cpus?: number;
  /** @default 3 (array indices 0–2: two shards per array) */
  maxArraySize?: number;
}

const DAEMONS = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'sinfo', 'scancel'];

/** Why Slurm cannot start here, or null when it may. */
export function slurmUnavailableReason(): string | null {
  if (process.platform !== 'linux') return 'Slurm runs on Linux only';
  const missing = DAEMONS.filter((name) => spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0 && spawnSync('sh', ['-c', `test -x /usr/sbin/${name}`]).status !== 0);
  if (missing.length > 0) return `Slurm is not installed (missing ${missing.join(', ')}; apt-get install slurm-wlm munge)`;
  if (process.getuid?.() !== 0) return 'a private slurmd needs root';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const sbin = (name: string) => (spawnSync('sh', ['-c', `command -v ${name}`]).status === 0 ? name : `/usr/sbin/${name}`);

export async function startSlurm(options: SlurmOptions = {}): Promise<SlurmCluster | { skipped: string }> {
  const reason = slurmUnavailableReason();
  if (reason !== null) return { skipped: reason };
  const dir = mkdtempSync(join(tmpdir(), 'mpx-slurm-'));
  for (const sub of ['munge', 'spool/ctld', 'spool/d', 'log']) mkdirSync(join(dir, sub), { recursive: true });
  chmodSync(join(dir, 'munge'), 0o755);
  chmodSync(dir, 0o755);
  const key = join(dir, 'munge', 'munge.key');
  writeFileSync(key, Buffer.from(Array.from({ length: 1024 }, () => Math.floor(Math.random() * 256))), { mode: 0o400 });
  const maxArraySize = options.maxArraySize ?? 3;
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  let hasGpus = true;
  try {
    for (const i of [0, 1]) execFileSync('mknod', [join(dir, `fakegpu${i}`), 'c', '195', String(i)], { stdio: 'ignore' });
  } catch {
    hasGpus = false;
  }
  const memMiB = Math.max(2048, Math.floor(totalmem() / 1024 / 1024) - 1024);
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=mpxtest',
      'SlurmctldHost=localhost(127.0.0.1)',
      'SlurmUser=root',
      'AuthType=auth/munge',
      `AuthInfo=socket=${dir}/munge/munge.socket`,
      'CredType=cred/munge',
      'MpiDefault=none',
      'ProctrackType=proctrack/pgid',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core_Memory',
      'SchedulerType=sched/builtin',
      // The node may offer more CPUs than the machine has, so that a test's tasks start together.
      'SlurmdParameters=config_overrides',
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      `StateSaveLocation=${dir}/spool/ctld`,
      `SlurmdSpoolDir=${dir}/spool/d`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd.log`,
      'ReturnToService=2',
      `MaxArraySize=${maxArraySize}`,
      'DefMemPerCPU=256',
      'KillWait=10',
      ...(hasGpus ? ['GresTypes=gpu'] : []),
      `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${options.cpus ?? Math.max(4, cpus().length)} RealMemory=${memMiB}${hasGpus ? ' Gres=gpu:2' : ''} State=UNKNOWN`,
      'PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  if (hasGpus) writeFileSync(join(dir, 'gres.conf'), `Name=gpu File=${dir}/fakegpu[0-1]\n`);
  const env = { SLURM_CONF: conf };
  const runIn = (command: string, args: string[]) => execFileSync(command, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  const cluster: SlurmCluster = {
    dir,
    env,
    maxArraySize,
    hasGpus,
    run: runIn,
    stop: () => stopDaemons(dir),
  };
  try {
    runIn(sbin('munged'), ['--force', '-S', `${dir}/munge/munge.socket`, '--key-file', key, '--pid-file', `${dir}/munge/munged.pid`, '--log-file', `${dir}/log/munged.log`, '--seed-file', `${dir}/munge/munge.seed`]);
    runIn(sbin('slurmctld'), ['-f', conf]);
    runIn(sbin('slurmd'), ['-f', conf]);
    const deadline = Date.now() + 20_000;
    for (;;) {
      let state = '';
      try {
        state = runIn('sinfo', ['-h', '-o', '%T']);
      } catch {
        // the controller is not answering yet
      }
      if (/idle/.test(state)) break;
      if (Date.now() > deadline) throw new Error(`the node did not become idle (sinfo: ${state.trim() || 'no answer'})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    const log = ['slurmctld', 'slurmd'].map((d) => tail(join(dir, 'log', `${d}.log`))).join('\n');
    await stopDaemons(dir);
    return { skipped: `Slurm did not start here: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}${log ? `; logs: ${log}` : ''}` };
  }
  return cluster;
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '';
  }
}

/** Stops the daemons by the pids in their pid files (TERM, then KILL after 5 s) and removes the directory. */
async function stopDaemons(dir: string): Promise<void> {
  const pids: number[] = [];
  for (const file of ['slurmd.pid', 'slurmctld.pid', 'munge/munged.pid']) {
    try {
      const pid = Number(readFileSync(join(dir, file), 'utf8').trim());
      if (pid > 0) pids.push(pid);
    } catch {
      // never started
    }
  }
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  const deadline = Date.now() + 5_000;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
