/**
 * The experiment schema (`schemas/experiment.schema.json`), compiled once with ajv, and the words mpx uses to say
 * what a schema node accepts ("an integer ≥ 1", "one of adam, sgd, momentum"). Read by validation and by the docs.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

/** The parts of JSON Schema this file reads. */
export interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  required?: string[];
  maxProperties?: number;
  maxLength?: number;
  pattern?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
  anyOf?: SchemaNode[];
  description?: string;
  default?: unknown;
  /** Phrase that replaces the generated "must be …" for pattern and anyOf errors (vscode shows it too). */
  errorMessage?: string;
  /**
   * mpx's own keyword: a hint per value people write that the schema rejects (`backend: gpu`, `seed: 0`), keyed by the
   * value as text (lower case for strings). It lives in the schema, next to the rule it explains.
   */
  hints?: Record<string, string>;
  definitions?: Record<string, SchemaNode>;
}

/** The experiment schema, read once; `npm pack` ships `schemas/` next to `dist/`, so the relative URL works for both. */
export const EXPERIMENT_SCHEMA = JSON.parse(
  readFileSync(new URL('../../schemas/experiment.schema.json', import.meta.url), 'utf8'),
) as SchemaNode;

const SCHEMA_KEY = 'experiment';
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
ajv.addKeyword({ keyword: 'hints', schemaType: 'object' });
ajv.addSchema(EXPERIMENT_SCHEMA, SCHEMA_KEY);
/** The whole spec. */
export const validateExperiment = compileRef('#');

/** Branches of each `oneOf`, compiled on their own so a value can be checked against the one branch it chose. */
export const branchValidators = new Map<string, ValidateFunction>();
(function collectBranches(node: unknown): void {
  if (node === null || typeof node !== 'object') return;
  for (const branch of (node as SchemaNode).oneOf ?? []) {
    if (branch.$ref !== undefined && !branchValidators.has(branch.$ref)) branchValidators.set(branch.$ref, compileRef(branch.$ref));
  }
  for (const child of Object.values(node)) collectBranches(child);
})(EXPERIMENT_SCHEMA);


// ajv hands back these very objects as `parentSchema` (with `verbose`), which tells a layer item from other maps.
export const LAYER_SCHEMA = EXPERIMENT_SCHEMA.definitions?.layer;
export const MATRIX_ENTRY_SCHEMA = EXPERIMENT_SCHEMA.definitions?.matrixEntry;

function compileRef(ref: string): ValidateFunction {
  const validate = ajv.getSchema(`${SCHEMA_KEY}${ref}`);
  if (validate === undefined) throw new Error(`internal: schema ${ref} not found`);
  return validate;
}

function resolveRef(ref: string): SchemaNode {
  let node: unknown = EXPERIMENT_SCHEMA;
  for (const part of ref.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    node = (node as Record<string, unknown> | undefined)?.[part];
  }
  if (node === undefined) throw new Error(`internal: schema ${ref} not found`);
  return node as SchemaNode;
}

export function deref(schema: SchemaNode): SchemaNode {
  return schema.$ref === undefined ? schema : { ...resolveRef(schema.$ref), ...schema, $ref: undefined };
}

function bounds(schema: SchemaNode): string {
  // Upper limits above 100 are guard rails against typos, not part of what the value means: say them only when hit.
  const low =
    schema.minimum !== undefined ? (['≥', schema.minimum] as const)
    : schema.exclusiveMinimum !== undefined ? (['>', schema.exclusiveMinimum] as const)
    : undefined;
  const high =
    schema.maximum !== undefined && schema.maximum <= 100 ? (['≤', schema.maximum] as const)
    : schema.exclusiveMaximum !== undefined && schema.exclusiveMaximum <= 100 ? (['<', schema.exclusiveMaximum] as const)
    : undefined;
  if (low?.[0] === '≥' && high?.[0] === '≤') return ` from ${low[1]} to ${high[1]}`;
  const parts = [low, high].filter((b) => b !== undefined).map(([op, n]) => `${op} ${n}`);
  return parts.length === 0 ? '' : ` ${parts.join(' and ')}`;
}

/** "an integer ≥ 1", "a list of integers ≥ 1", "one of adam, sgd, momentum". */
export function describeSchema(input: SchemaNode): string {
  const schema = deref(input);
  if (schema.enum !== undefined) return `one of ${schema.enum.map(String).join(', ')}`;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  const described = types.map((type) => {
    switch (type) {
      case 'integer':
        return `an integer${bounds(schema)}`;
      case 'number':
        return `a number${bounds(schema)}`;
      case 'string':
        return 'a string';
      case 'boolean':
        return 'true or false';
      case 'object':
        return 'a map';
      case 'null':
        return 'empty';
      case 'array':
        return schema.items === undefined ? 'a list' : `a list of ${describePlural(schema.items)}`;
      default:
        return type;
    }
  });
  return described.length === 0 ? 'valid' : described.join(' or ');
}

function describePlural(input: SchemaNode): string {
  const schema = deref(input);
  if (schema.enum !== undefined) return `values from ${schema.enum.map(String).join(', ')}`;
  if (schema.type === 'integer') return `integers${bounds(schema)}`;
  if (schema.type === 'number') return `numbers${bounds(schema)}`;
  if (schema.type === 'string') return 'strings';
  if (schema.type === 'object') return 'maps';
  return 'values';
}
