/**
 * Content ids of cells and runs: equal ids mean equal results-relevant inputs, whatever the spec's key order, model
 * key or timeout. Ids are the first 16 hex characters of a sha256 over canonical JSON.
 */
import * as crypto from 'node:crypto';
import type { BackendChoice, CellAxes, DataDef, ModelDef, TrainDef } from '../spec/types.js';

export const ID_LENGTH = 16;

/** Everything that decides what one cell measures. */
export interface ResolvedCell {
  /** Hashed without `name`: renaming a model key does not change what it measures. */
  model: ModelDef;
  data: DataDef;
  /** Hashed without `timeoutSeconds` and `retries`: they decide whether a run finishes, not what it measures. */
  train: TrainDef;
  policy: CellAxes['policy'];
  batchSize: number;
  accumulationSteps: number;
  seed: number;
  backend: BackendChoice;
}

/** The parts of a cell shared by every cell of one model in one spec. */
export type SharedCellParts = Pick<ResolvedCell, 'model' | 'data' | 'train' | 'seed'>;
/** The parts that vary from cell to cell. */
export type CellVariables = Pick<ResolvedCell, 'policy' | 'batchSize' | 'accumulationSteps' | 'backend'>;

/**
 * JSON with object keys sorted (UTF-16 order) at every depth, no whitespace; otherwise as `JSON.stringify`
 * (undefined members dropped, undefined array items and non-finite numbers become null).
 */
export function canonicalJson(value: unknown): string {
  const json = serialise(value);
  if (json === undefined) throw new TypeError(`canonicalJson cannot serialise a ${typeof value}`);
  return json;
}

function serialise(value: unknown): string | undefined {
  if (typeof value === 'bigint') throw new TypeError('canonicalJson cannot serialise a bigint');
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => serialise(item) ?? 'null').join(',')}]`;
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const json = serialise(record[key]);
    if (json !== undefined) members.push(`${JSON.stringify(key)}:${json}`);
  }
  return `{${members.join(',')}}`;
}

/** sha256 (hex) of a string; `crypto.hash` (Node ≥ 20.12) is about twice as fast as `createHash` for short input. */
export const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

/** The document a cell id hashes: the resolved cell minus model name, timeout and retries. */
export function cellDocument(cell: ResolvedCell): Record<string, unknown> {
  const { name: _name, ...model } = cell.model;
  const { timeoutSeconds: _timeoutSeconds, retries: _retries, ...train } = cell.train;
  return {
    model,
    data: cell.data,
    train,
    policy: cell.policy,
    batchSize: cell.batchSize,
    accumulationSteps: cell.accumulationSteps,
    seed: cell.seed,
    backend: cell.backend,
  };
}

/**
 * Returns a function giving the full sha256 (hex) of a cell's canonical JSON — the same as
 * `sha256(canonicalJson(cellDocument(cell)))` — with the shared parts serialised once, not once per cell.
 */
export function createCellHasher(shared: SharedCellParts): (variables: CellVariables) => string {
  // The document's keys in sorted order: accumulationSteps, backend, batchSize, data, model, policy, seed, train.
  const doc = cellDocument({ ...shared, policy: 'float32', batchSize: 0, accumulationSteps: 0, backend: 'auto' });
  const middle = `,"data":${canonicalJson(doc.data)},"model":${canonicalJson(doc.model)},"policy":`;
  const tail = `,"seed":${canonicalJson(doc.seed)},"train":${canonicalJson(doc.train)}}`;
  // For numbers and strings canonicalJson is JSON.stringify; calling it directly keeps this per-cell path short.
  return ({ policy, batchSize, accumulationSteps, backend }) =>
    sha256Hex(
      `{"accumulationSteps":${JSON.stringify(accumulationSteps)},"backend":${JSON.stringify(backend)},` +
        `"batchSize":${JSON.stringify(batchSize)}${middle}${JSON.stringify(policy)}${tail}`,
    );
}

/** The cell id: the first 16 hex characters of the cell digest. */
export function cellIdFromDigest(cellDigest: string): string {
  return cellDigest.slice(0, ID_LENGTH);
}

/**
 * The run id: a hash of `{"cell": <full cell digest>, "repeat": n}`. Hashing the 64-character digest instead of the
 * whole cell again keeps runs cheap (one short hash each) while still covering every byte of the cell.
 */
export function runIdFromDigest(cellDigest: string, repeat: number): string {
  // canonicalJson({ cell: cellDigest, repeat }) written out: a hex digest needs no escaping.
  return sha256Hex(`{"cell":"${cellDigest}","repeat":${JSON.stringify(repeat)}}`).slice(0, ID_LENGTH);
}

/** Content id of a cell (16 hex characters). */
export function hashCell(cell: ResolvedCell): string {
  return cellIdFromDigest(sha256Hex(canonicalJson(cellDocument(cell))));
}

/** Content id of one repeat of a cell (16 hex characters). */
export function hashRun(cell: ResolvedCell, repeat: number): string {
  return runIdFromDigest(sha256Hex(canonicalJson(cellDocument(cell))), repeat);
}
