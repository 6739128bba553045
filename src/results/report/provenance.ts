/** Where a report's numbers come from, as label/value pairs both reports show (from `meta.json`). Pure; not escaped. */
import { RECORDED_STATUSES } from '../../runner/protocol.js';
import { formatBytes } from '../peak.js';
import type { ReportInput } from './index.js';

export function provenanceEntries(input: ReportInput): Array<[string, string]> {
  const meta = input.table.metadata;
  const entries: Array<[string, string]> = [['results', input.table.source]];
  const specFile = input.specFile ?? (meta?.spec.file || null);
  if (specFile !== null) entries.push(['spec', meta?.spec.sha256 ? `${specFile} (sha256 ${meta.spec.sha256.slice(0, 12)})` : specFile]);
  if (meta === null) {
    entries.push(['metadata', 'none (no meta.json beside the results)']);
    return entries;
  }
  if (meta.git !== null) entries.push(['commit', `${meta.git.commit.slice(0, 12)}${meta.git.dirty === true ? ' (modified files)' : ''}`]);
  if (meta.date !== '') entries.push(['date', meta.date]);
  entries.push(['backends', meta.backends.length > 0 ? meta.backends.join(', ') : 'none recorded']);
  const versions = [`mpx ${meta.mpxVersion}`, `node ${meta.nodeVersion}`, ...Object.entries(meta.tfjsVersions).map(([name, v]) => `${name.replace('@tensorflow/', '')} ${v}`)];
  entries.push(['versions', versions.join(', ')]);
  if (meta.torch !== null && meta.backends.includes('torch')) {
    entries.push(['PyTorch', `${meta.torch.version}${meta.torch.cuda ? ', CUDA' : ', CPU'}${meta.torch.blas ? `, ${meta.torch.blas}` : ''}`]);
  }
  entries.push(['machine', `${meta.cpu.model ?? 'unknown CPU'}, ${meta.cpu.cores} cores, ${meta.os}`]);
  entries.push(['GPUs', meta.gpus.length === 0 ? 'none' : meta.gpus.map((g) => `${g.name}${g.memoryTotalBytes !== null ? ` (${formatBytes(g.memoryTotalBytes)})` : ''}`).join(', ')]);
  const statuses = RECORDED_STATUSES.filter((s) => meta.runs[s] > 0).map((s) => `${meta.runs[s]} ${s}`);
  const reused = meta.runs.reused > 0 ? `, ${meta.runs.reused} reused from an earlier mpx run` : '';
  entries.push(['runs', `${meta.runs.recorded} of ${meta.runs.planned} recorded${statuses.length > 0 ? ` (${statuses.join(', ')})` : ''}${reused}`]);
  return entries;
}
