/**
 * Schema validation of a parsed spec against `schemas/experiment.schema.json`, with ajv's errors rewritten for people:
 * one message per problem, pointing at the YAML node (the key, for unknown keys), with a did-you-mean where it helps.
 * (ESLint `lib/config/config.js` words unknown keys the same way: "Unexpected property … Expected properties: …".)
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { didYouMean } from '../util/did-you-mean.js';
import { formatPath, type SpecProblem } from './locator.js';
import { branchValidators, deref, describeSchema, LAYER_SCHEMA, MATRIX_ENTRY_SCHEMA, type SchemaNode, validateExperiment } from './schema.js';

/** A value as the user wrote it, short and safe for a terminal (control characters escaped). */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v))) {
      const text = `[${value.map((v) => (typeof v === 'string' ? JSON.stringify(v) : String(v))).join(', ')}]`;
      if (text.length <= 60) return text;
    }
    return 'a list';
  }
  return 'a map';
}

function firstSentence(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const match = /^(.*?)\.(\s|$)/.exec(text);
  return match?.[1] ?? text;
}

interface Problem extends SpecProblem {
  path: (string | number)[];
  /** Set for a `required` error: the key that is missing (explainOneOf words the hint of its own tag). */
  missingKey?: string;
}

interface Located {
  path: (string | number)[];
  error: ErrorObject;
}

function isUnder(path: readonly (string | number)[], prefix: readonly (string | number)[]): boolean {
  return path.length >= prefix.length && prefix.every((part, i) => part === path[i]);
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let node = root;
  for (const part of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[part];
  }
  return node;
}

/** JSON pointer → path, with array indices as numbers (as `SpecLocator` and `locate` expect). */
function decodePointer(pointer: string, root: unknown): (string | number)[] {
  const path: (string | number)[] = [];
  if (pointer === '') return path;
  let node = root;
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const key = Array.isArray(node) ? Number(part) : part;
    path.push(key);
    node = node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[key] : undefined;
  }
  return path;
}

/**
 * Validates parsed YAML against the experiment schema. Returns every problem as an MpxError located in the YAML
 * (empty when the spec is valid); one message per problem, `oneOf`/`anyOf` noise collapsed.
 */
export function validateSpecData(data: unknown): SpecProblem[] {
  return validateWith(validateExperiment, data, []).map(({ missingKey: _missingKey, ...problem }) => problem);
}

function validateWith(validate: ValidateFunction, data: unknown, base: (string | number)[]): Problem[] {
  if (validate(data)) return [];
  const located: Located[] = (validate.errors ?? []).map((error) => ({
    path: [...base, ...decodePointer(error.instancePath, data)],
    error,
  }));
  const problems = explain(located, data, base);
  // Never let invalid data through because no rewrite matched: fall back to ajv's own words.
  const [first] = located;
  if (problems.length === 0 && first !== undefined) {
    problems.push({ path: first.path, message: `${formatPath(first.path)} ${first.error.message ?? 'is invalid'}` });
  }
  return problems;
}

function explain(located: Located[], data: unknown, base: (string | number)[]): Problem[] {
  const at = (path: readonly (string | number)[]) => valueAt(data, path.slice(base.length));
  const problems: Problem[] = [];
  const typeFailed = located.filter((l) => l.error.keyword === 'type');
  /** A type error at `path`; with `schema`, only one raised by that schema object (not by a branch inside it). */
  const hasTypeErrorAt = (path: readonly (string | number)[], schema?: unknown) =>
    typeFailed.some(
      (l) => l.path.length === path.length && isUnder(l.path, path) && (schema === undefined || l.error.parentSchema === schema),
    );

  // Alternatives first, outermost first: everything beneath them is replaced by one explanation.
  const collapsed: (string | number)[][] = [];
  const alternatives = located
    .filter((l) => l.error.keyword === 'oneOf' || l.error.keyword === 'anyOf')
    .sort((a, b) => a.path.length - b.path.length);
  for (const { path, error } of alternatives) {
    if (collapsed.some((c) => isUnder(path, c)) || hasTypeErrorAt(path, error.parentSchema)) continue;
    collapsed.push(path);
    const parent = error.parentSchema as SchemaNode;
    const value = at(path);
    if (error.keyword === 'oneOf') {
      problems.push(...explainOneOf(parent.oneOf ?? [], value, path, parent.errorMessage));
    } else {
      const expected = parent.errorMessage ?? `must be ${(parent.anyOf ?? []).map(describeSchema).join(' or ')}`;
      problems.push({ path, message: `${formatPath(path)} ${expected}, got ${showValue(value)}` });
    }
  }

  for (const { path, error } of located) {
    if (collapsed.some((c) => isUnder(path, c))) continue;
    if (error.keyword !== 'type' && hasTypeErrorAt(path)) continue;
    const problem = explainOne(path, error, at(path));
    if (problem !== undefined) problems.push(problem);
  }
  return problems;
}

/**
 * A `oneOf` of maps told apart by one key with a `const` (`preset`, `kind`): pick the branch the value names and
 * report only that branch's problems, instead of ajv's errors for every branch.
 */
function explainOneOf(refs: SchemaNode[], value: unknown, path: (string | number)[], errorMessage?: string): Problem[] {
  const branches = refs.map(deref);
  const tags = new Set(branches.flatMap((b) => Object.entries(b.properties ?? {}).filter(([, s]) => s.const !== undefined).map(([k]) => k)));
  const [tag] = tags;
  if (tag === undefined || tags.size !== 1 || value === null || typeof value !== 'object' || Array.isArray(value)) {
    // Not a tagged union of maps (e.g. a number or a size string): the schema's own wording says what fits.
    const expected = errorMessage ?? `must be ${describeSchema({ type: 'object' })}`;
    return [{ path, message: `${formatPath(path)} ${expected}, got ${showValue(value)}` }];
  }
  const tagValues = branches.map((b) => b.properties?.[tag]?.const).filter((v): v is string => typeof v === 'string');
  const given = (value as Record<string, unknown>)[tag];
  let index: number;
  if (given !== undefined) {
    index = branches.findIndex((b) => b.properties?.[tag]?.const === given);
    if (index < 0) {
      const tagPath = [...path, tag];
      return [
        {
          path: tagPath,
          message: `${formatPath(tagPath)} must be one of ${tagValues.join(', ')}, got ${showValue(given)}`,
          hint:
            (typeof given === 'string' ? didYouMean(given, tagValues) : undefined) ??
            (branches.some((b) => b.properties?.[tag] === undefined) ?
              `or leave out "${tag}" and write the model out (${branches.find((b) => b.properties?.[tag] === undefined)?.required?.join(', ') ?? ''})`
            : undefined),
        },
      ];
    }
  } else {
    index = branches.findIndex((b) => {
      const tagSchema = b.properties?.[tag];
      return tagSchema === undefined || (tagSchema.default !== undefined && tagSchema.default === tagSchema.const);
    });
    if (index < 0) {
      return [{ path, message: `missing required key "${tag}" in ${formatPath(path)}`, hint: `use one of: ${tagValues.join(', ')}` }];
    }
  }
  const ref = refs[index]?.$ref;
  const validate = ref === undefined ? undefined : branchValidators.get(ref);
  if (validate === undefined) throw new Error(`internal: no validator for ${formatPath(path)}`);
  const chosen = branches[index];
  const problems = validateWith(validate, value, path);
  for (const problem of problems) {
    // A key that belongs to another branch: say which one, rather than just "unknown key".
    const key = problem.path[problem.path.length - 1];
    if (!problem.atKey || problem.path.length !== path.length + 1 || typeof key !== 'string') continue;
    const owner = branches.find((b) => b !== chosen && b.properties?.[key] !== undefined);
    if (owner === undefined) continue;
    const ownerTag = owner.properties?.[tag]?.const as string | undefined;
    const chosenTag = chosen?.properties?.[tag]?.const as string | undefined;
    problem.message =
      ownerTag === undefined ?
        `"${key}" in ${formatPath(path)} only applies to models without "${tag}"`
      : `"${key}" in ${formatPath(path)} only applies to ${tag}: ${ownerTag}`;
    problem.hint =
      ownerTag === undefined ? `remove "${key}", or remove "${tag}: ${chosenTag ?? ''}" and write the layers yourself`
      : `remove "${key}", or use ${tag}: ${ownerTag}`;
  }
  if (given === undefined) {
    for (const problem of problems) {
      const isOwnKey = problem.path.length === path.length && problem.missingKey !== undefined;
      if (isOwnKey) problem.hint = `or use ${tag}: ${tagValues.join(' or ')}`;
    }
  }
  return problems;
}

/** `optimizer: sgd` where a map is expected: suggest `optimizer: { name: sgd }` when some key takes that value. */
function shorthandHint(schema: SchemaNode, value: string, last: string | number | undefined): string | undefined {
  const shapes = [schema, ...(schema.oneOf ?? [])].map(deref);
  for (const shape of shapes) {
    for (const [key, property] of Object.entries(shape.properties ?? {})) {
      const choices = deref(property).enum ?? [deref(property).const];
      if (choices.includes(value)) return `write ${typeof last === 'string' ? `${last}: ` : ''}{ ${key}: ${value} }`;
    }
  }
  return undefined;
}

function explainOne(path: (string | number)[], error: ErrorObject, value: unknown): Problem | undefined {
  const schema = (error.parentSchema ?? {}) as SchemaNode;
  const where = formatPath(path);
  const params = error.params as Record<string, unknown>;
  const got = `got ${showValue(value)}`;
  const last = path[path.length - 1];
  const isLayerItem = schema === LAYER_SCHEMA;
  switch (error.keyword) {
    case 'type': {
      let hint: string | undefined;
      if (schema.type === 'array' && value !== null && typeof value !== 'object') {
        const item = typeof value === 'string' && /^[A-Za-z0-9_.-]+$/.test(value) ? value : showValue(value);
        hint = `use a list: ${typeof last === 'string' ? `${last}: ` : ''}[${item}]`;
      } else if (path.length === 0) {
        hint = 'a spec is a map of keys such as name:, models: and matrix:';
      } else if (schema.type === 'object' && typeof value === 'string') {
        hint = shorthandHint(schema, value, last);
      }
      return { path, message: `${where} must be ${describeSchema(schema)}, ${got}`, hint };
    }
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const allowed = Object.keys(schema.properties ?? {}).filter((k) => k !== '$schema');
      const keyPath = [...path, key];
      if (isLayerItem) {
        return {
          path: keyPath,
          atKey: true,
          message: `unknown layer type ${JSON.stringify(key)} in ${where}; expected one of: ${allowed.join(', ')}`,
          hint: didYouMean(key, allowed),
        };
      }
      const place = path.length === 0 ? 'at the top level' : `in ${where}`;
      const empty = allowed.length === 0;
      return {
        path: keyPath,
        atKey: true,
        message: `unknown key ${JSON.stringify(key)} ${place}; ${empty ? 'it takes no keys' : `expected one of: ${allowed.join(', ')}`}`,
        hint: didYouMean(key, allowed),
      };
    }
    case 'required': {
      const key = String(params.missingProperty);
      const described = firstSentence(deref(schema.properties?.[key] ?? {}).description);
      return {
        path,
        message: path.length === 0 ? `missing required key "${key}"` : `missing required key "${key}" in ${where}`,
        missingKey: key,
        hint: described === undefined ? undefined : `${key}: ${described[0]?.toLowerCase() ?? ''}${described.slice(1)}`,
      };
    }
    case 'propertyNames':
      return undefined; // the nested error (the pattern the name breaks) says it better
    case 'pattern': {
      const name = error.propertyName;
      if (name !== undefined) {
        const keyPath = [...path, name];
        const owner = path.length === 1 && path[0] === 'models' ? 'model name' : 'key';
        return {
          path: keyPath,
          atKey: true,
          message: `${owner} ${JSON.stringify(name)} in ${where} ${schema.errorMessage ?? `must match ${schema.pattern}`}`,
        };
      }
      return { path, message: `${where} ${schema.errorMessage ?? `must match ${schema.pattern}`}, ${got}` };
    }
    case 'enum': {
      const allowed = (schema.enum ?? []).map(String);
      return {
        path,
        message: `${where} must be one of ${allowed.join(', ')}, ${got}`,
        hint: hintFor(schema, value) ?? (typeof value === 'string' ? didYouMean(value, allowed) : undefined),
      };
    }
    case 'const':
      return { path, message: `${where} must be ${JSON.stringify(schema.const)}, ${got}` };
    case 'minimum':
    case 'exclusiveMinimum':
      return {
        path,
        message: `${where} must be ${describeSchema(schema)}, ${got}`,
        hint: hintFor(schema, value),
      };
    case 'maximum':
    case 'exclusiveMaximum': {
      const limit = Number(params.limit);
      if (limit <= 100) return { path, message: `${where} must be ${describeSchema(schema)}, ${got}` };
      const phrase = error.keyword === 'maximum' ? `at most ${limit}` : `less than ${limit}`;
      return {
        path,
        message: `${where} must be ${phrase}, ${got}`,
        hint: limit >= 65536 ? 'mpx caps this value so that a typo cannot exhaust the machine' : undefined,
      };
    }
    case 'minItems':
    case 'maxItems': {
      const limit = Number(params.limit);
      const count = Array.isArray(value) ? value.length : 0;
      if (error.keyword === 'minItems' && limit === 1) {
        return { path, message: `${where} must not be empty`, hint: typeof last === 'string' && path[0] === 'matrix' ? `list at least one value, or remove "${last}"` : undefined };
      }
      const exact = schema.minItems !== undefined && schema.minItems === schema.maxItems;
      const phrase = exact ? `exactly ${limit}` : error.keyword === 'minItems' ? `at least ${limit}` : `at most ${limit}`;
      return { path, message: `${where} must have ${phrase} ${limit === 1 ? 'item' : 'items'}, got ${count}` };
    }
    case 'uniqueItems': {
      const i = Number(params.i);
      const j = Number(params.j);
      const later = Math.max(i, j);
      const item: unknown = Array.isArray(value) ? value[later] : undefined;
      return {
        path: [...path, later],
        message: `${where} lists ${showValue(item)} twice, at [${Math.min(i, j)}] and [${later}]`,
        hint: 'each value of a list may appear only once',
      };
    }
    case 'minProperties': {
      if (isLayerItem) {
        return {
          path,
          message: `${where} is empty; a layer is a map with one key, the layer type`,
          hint: 'e.g. "- dense: {units: 10}"',
        };
      }
      if (schema === MATRIX_ENTRY_SCHEMA) {
        return {
          path,
          message: `${where} is empty; give at least one of: ${Object.keys(schema.properties ?? {}).join(', ')}`,
        };
      }
      if (path.length === 1 && path[0] === 'models') {
        return { path, message: 'models must define at least one model', hint: 'e.g. models: { mlp: { preset: mlp } }' };
      }
      return { path, message: `${where} must have at least ${String(params.limit)} ${params.limit === 1 ? 'key' : 'keys'}` };
    }
    case 'maxProperties': {
      const keys = value !== null && typeof value === 'object' ? Object.keys(value) : [];
      if (isLayerItem) {
        return {
          path: [...path, keys[1] ?? ''],
          atKey: true,
          message: `${where} has ${keys.length} keys (${keys.join(', ')}); a layer is a map with exactly one key, the layer type`,
          hint: 'start each layer on its own "- " list item',
        };
      }
      return { path, message: `${where} must have at most ${String(params.limit)} keys, got ${keys.length}` };
    }
    case 'maxLength':
      return { path, message: `${where} must be at most ${String(params.limit)} characters long` };
    case 'if':
    case 'not':
      return undefined;
    default:
      return { path, message: `${where} ${error.message ?? 'is invalid'}` };
  }
}

/** The schema's own hint for a value it rejects (its `hints` keyword), if it has one. */
function hintFor(schema: SchemaNode, value: unknown): string | undefined {
  if (schema.hints === undefined || (typeof value !== 'string' && typeof value !== 'number')) return undefined;
  const key = typeof value === 'string' ? value.toLowerCase() : String(value);
  return Object.hasOwn(schema.hints, key) ? schema.hints[key] : undefined;
}
