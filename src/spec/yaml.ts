/**
 * Spec YAML to data, with positions: size, encoding and resource limits (depth, aliases), syntax errors worded for
 * people, reserved keys, and the `SpecLocator` that maps paths of the data back to line:col. Every failure here is an
 * MpxError at file:line:col.
 */
import {
  Composer,
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  Parser,
  type Alias,
  type CST,
  type Document,
  type Node as YamlNode,
  type YAMLError,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { MpxError } from '../errors.js';
import { combineErrors, formatPath, type SpecLocator, type SpecPath } from './locator.js';

/** Deepest nesting of maps and lists; a real spec needs about 7. */
export const MAX_NESTING_DEPTH = 64;
/** yaml's guard against alias bombs ("billion laughs"). */
export const MAX_ALIAS_COUNT = 100;
/** Keys that could reach Object.prototype if anything ever copied the data naively. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface ParsedYaml {
  data: unknown;
  locator: SpecLocator;
}

/** Parses one YAML document into plain data; throws MpxError (every problem found in one pass in `related`). */
export function parseSpecYaml(text: string | Uint8Array, file: string): ParsedYaml {
  const source = (typeof text === 'string' ? text : decodeUtf8(text, file)).replace(/^\uFEFF/, '');

  const lineCounter = new LineCounter();
  const position = (offset: number) => lineCounter.linePos(offset);
  const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(source));
  checkDepth(tokens, file, position);

  const composer = new Composer({ uniqueKeys: true, resolveKnownTags: false, prettyErrors: false });
  const docs = Array.from(composer.compose(tokens));
  const [doc, second] = docs;
  if (doc === undefined || (docs.length === 1 && isEmptyNode(doc.contents) && doc.errors.length === 0)) {
    throw new MpxError('SPEC_INVALID', 'the file is empty; a spec needs at least name, models and matrix', { file });
  }
  if (second !== undefined) {
    const { line, col } = position(second.range[0]);
    throw new MpxError('SPEC_INVALID', `the file holds ${docs.length} YAML documents; a spec is a single document`, {
      file,
      line,
      col,
      hint: 'remove the "---" line, or put each spec in its own file',
    });
  }
  if (doc.errors.length > 0) throwIfAny(doc.errors.map((e) => syntaxError(e, doc, file, source, position)));
  // A tag mpx does not know (`!foo`) would otherwise be read as if it were not there: say so instead.
  const unresolvedTags = doc.warnings.filter((w) => w.code === 'TAG_RESOLVE_FAILED');
  if (unresolvedTags.length > 0) {
    throwIfAny(
      unresolvedTags.map((w) => {
        const { line, col } = position(w.pos[0]);
        const tag = source.slice(w.pos[0], w.pos[1]);
        return new MpxError('YAML_SYNTAX', `unknown YAML tag ${tag}; specs use plain YAML values`, {
          file,
          line,
          col,
          hint: `remove ${tag}`,
        });
      }),
    );
  }

  const aliases = checkNodes(doc, file, source, position);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    const firstAlias = [...aliases.keys()][0];
    const aliasStart = firstAlias?.range?.[0];
    const at = aliasStart === undefined ? undefined : position(aliasStart);
    const isBomb = error instanceof Error && /alias count/i.test(error.message);
    throw new MpxError(
      isBomb ? 'SPEC_LIMIT' : 'YAML_SYNTAX',
      isBomb ?
        `aliases (*name) expand too much: more than ${MAX_ALIAS_COUNT} copies`
      : `cannot read the YAML: ${cleanMessage(error instanceof Error ? error.message : String(error))}`,
      { file, line: at?.line, col: at?.col, hint: isBomb ? 'write the values out instead of repeating aliases' : undefined, cause: error },
    );
  }
  return { data, locator: makeLocator(doc, aliases, file, position) };
}

function throwIfAny(errors: readonly MpxError[]): void {
  if (errors.length > 0) throw combineErrors(errors);
}

/** No node at all, or the implicit null of a document that is only `---`. */
function isEmptyNode(node: unknown): boolean {
  return node === null || (isScalar(node) && node.value === null && node.range?.[0] === node.range?.[1]);
}

function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const lineStart = bad === 0 ? 0 : bytes.lastIndexOf(0x0a, bad - 1) + 1;
    const line = bytes.subarray(0, bad).filter((b) => b === 0x0a).length + 1;
    const col = new TextDecoder('utf-8').decode(bytes.subarray(lineStart, bad)).length + 1;
    const isUtf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
    const byte = (bytes[bad] ?? 0).toString(16).padStart(2, '0');
    throw new MpxError(
      'YAML_SYNTAX',
      isUtf16 ? 'the file is UTF-16; specs must be UTF-8' : `the file is not valid UTF-8 (byte 0x${byte})`,
      { file, line, col, hint: 'save the file with UTF-8 encoding' },
    );
  }
}

/** Offset of the first byte that does not start or continue a well-formed UTF-8 sequence (RFC 3629). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    let extra: number;
    let min: number;
    if (b < 0x80) {
      i += 1;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) [extra, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [extra, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [extra, min] = [3, 0x10000];
    else return i;
    let codePoint = b & (0x3f >> extra);
    for (let k = 1; k <= extra; k++) {
      const next = bytes[i + k];
      if (next === undefined || (next & 0xc0) !== 0x80) return i;
      codePoint = (codePoint << 6) | (next & 0x3f);
    }
    if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return i;
    i += extra + 1;
  }
  return bytes.length;
}

type Position = (offset: number) => { line: number; col: number };

/**
 * Rejects deep nesting on the token tree, before the composer (which recurses) sees it: a megabyte of "[" would
 * otherwise exhaust the stack.
 */
function checkDepth(tokens: readonly CST.Token[], file: string, position: Position): void {
  const stack: Array<[CST.Token, number]> = tokens.map((t) => [t, 0]);
  while (stack.length > 0) {
    const [token, depth] = stack.pop() ?? [];
    if (token === undefined || depth === undefined) break;
    if (token.type === 'document') {
      if (token.value !== undefined) stack.push([token.value, depth]);
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth + 1 > MAX_NESTING_DEPTH) {
        const { line, col } = position(token.offset);
        throw new MpxError('SPEC_LIMIT', `maps and lists are nested more than ${MAX_NESTING_DEPTH} levels deep`, {
          file,
          line,
          col,
          hint: 'a spec needs only a few levels; check the indentation and brackets',
        });
      }
      for (const item of token.items) {
        if (item.key) stack.push([item.key, depth + 1]);
        if (item.value) stack.push([item.value, depth + 1]);
      }
    }
  }
}

function cleanMessage(message: string): string {
  const first = (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '').trim();
  return first.length === 0 ? 'invalid YAML' : first[0]?.toLowerCase() + first.slice(1);
}

function syntaxError(error: YAMLError, doc: Document, file: string, source: string, position: Position): MpxError {
  const { line, col } = position(error.pos[0]);
  const options = { file, line, col };
  switch (error.code) {
    case 'DUPLICATE_KEY': {
      const earlier = findDuplicate(doc, error.pos[0]);
      const key = earlier?.key ?? source.slice(error.pos[0], error.pos[1]);
      const first = earlier === undefined ? undefined : position(earlier.offset);
      return new MpxError(
        'YAML_SYNTAX',
        `duplicate key ${JSON.stringify(key)}${first === undefined ? '' : `; it is already set at line ${first.line}`}`,
        { ...options, hint: 'keys of a map must be unique; remove or rename one of them' },
      );
    }
    case 'TAB_AS_INDENT':
      return new MpxError('YAML_SYNTAX', 'tab used for indentation; YAML indents with spaces only', {
        ...options,
        hint: 'replace the tab with spaces',
      });
    case 'RESOURCE_EXHAUSTION':
      return new MpxError('SPEC_LIMIT', `the YAML is too complex to read: ${cleanMessage(error.message)}`, options);
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
    case 'UNEXPECTED_TOKEN':
      return new MpxError('YAML_SYNTAX', cleanMessage(error.message), {
        ...options,
        hint: 'the cause may be above this point: check the brackets, quotes and indentation that lead here',
      });
    default:
      return new MpxError('YAML_SYNTAX', cleanMessage(error.message), options);
  }
}

/** The first key equal to the duplicate key that starts at `offset`. */
function findDuplicate(doc: Document, offset: number): { key: string; offset: number } | undefined {
  let found: { key: string; offset: number } | undefined;
  const visitNode = (node: unknown, depth: number): void => {
    if (found !== undefined || depth > MAX_NESTING_DEPTH + 1) return;
    if (isMap(node)) {
      const duplicate = node.items.find((p) => isScalar(p.key) && p.key.range?.[0] === offset);
      if (duplicate !== undefined && isScalar(duplicate.key)) {
        const value = duplicate.key.value;
        const earlier = node.items.find((p) => isScalar(p.key) && p.key.value === value);
        const earlierStart = isScalar(earlier?.key) ? earlier.key.range?.[0] : undefined;
        if (earlierStart !== undefined) {
          found = { key: String(value), offset: earlierStart };
          return;
        }
      }
      for (const pair of node.items) {
        visitNode(pair.key, depth + 1);
        visitNode(pair.value, depth + 1);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) visitNode(item, depth + 1);
    } else if (isPair(node)) {
      visitNode(node.key, depth + 1);
      visitNode(node.value, depth + 1);
    }
  };
  visitNode(doc.contents, 0);
  return found;
}

/**
 * Checks the parsed tree before it becomes JavaScript: reserved keys (so no prototype is ever touched), keys that are
 * maps or lists, numbers too large to hold, and aliases without an anchor or inside their own anchored value. Returns
 * each alias with its anchored node.
 */
function checkNodes(doc: Document, file: string, source: string, position: Position): Map<Alias, YamlNode> {
  const errors: MpxError[] = [];
  const anchors = new Map<string, YamlNode>();
  const aliases = new Map<Alias, YamlNode>();
  /** Collections being visited: an alias to one of them would make the data contain itself. */
  const open = new Set<YamlNode>();
  const at = (node: YamlNode | null | undefined) => {
    const start = node?.range?.[0];
    return start === undefined ? undefined : position(start);
  };
  const fail = (node: YamlNode, message: string, hint?: string, code: 'SPEC_INVALID' | 'YAML_SYNTAX' = 'SPEC_INVALID') => {
    const where = at(node);
    errors.push(new MpxError(code, message, { file, line: where?.line, col: where?.col, hint }));
  };
  const visitNode = (node: unknown, path: (string | number)[]): void => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) {
        fail(node, `alias *${node.source} has no anchor &${node.source} before it`, 'define "&name" on a value above the alias', 'YAML_SYNTAX');
      } else if (open.has(target)) {
        fail(node, `alias *${node.source} is used inside the value it names`, 'a value cannot contain itself; write it out', 'YAML_SYNTAX');
      } else {
        aliases.set(node, target);
      }
      return;
    }
    if (!isMap(node) && !isSeq(node) && !isScalar(node)) return;
    if (node.anchor !== undefined) anchors.set(node.anchor, node);
    if (!isScalar(node)) {
      open.add(node);
      visitChildren(node, path);
      open.delete(node);
      return;
    }
    if (isScalar(node)) {
      if (typeof node.value === 'number' && !Number.isFinite(node.value)) {
        const written = node.range ? source.slice(node.range[0], node.range[1]).trim() : String(node.value);
        fail(
          node,
          `${formatPath(path)} must be a finite number, got ${written}`,
          Number.isNaN(node.value) ? undefined : 'the number is too large to hold (beyond about 1.8e308)',
        );
      }
      return;
    }
  };
  const visitChildren = (node: YAMLMap | YAMLSeq, path: (string | number)[]): void => {
    if (isSeq(node)) {
      node.items.forEach((item, index) => visitNode(item, [...path, index]));
      return;
    }
    for (const pair of node.items) {
      const key = pair.key;
      if (isScalar(key) && (key.value === null || key.value === '')) {
        fail(key.range?.[0] === key.range?.[1] && isNode(pair.value) ? pair.value : key, 'a map entry has no key', 'write the key before ":"');
      } else if (isScalar(key)) {
        const name = String(key.value);
        if (FORBIDDEN_KEYS.has(name)) {
          fail(
            key,
            `key ${JSON.stringify(name)} is not allowed in a spec`,
            '__proto__, constructor and prototype are reserved names in JavaScript; rename the key',
          );
          continue;
        }
        if (key.anchor !== undefined) anchors.set(key.anchor, key);
        visitNode(pair.value, [...path, name]);
      } else if (isAlias(key)) {
        fail(key, 'a key cannot be an alias (*name); write the key out');
      } else {
        fail(
          (key as YamlNode | null) ?? (pair.value as YamlNode | null) ?? node,
          key === null ? 'a map entry has no key' : 'keys must be plain names, not lists or maps',
        );
      }
    }
  };
  visitNode(doc.contents, []);
  throwIfAny(errors);
  return aliases;
}

/** Follows `path` through maps, lists and aliases. */
function walk(
  doc: Document,
  aliases: Map<Alias, YamlNode>,
  path: SpecPath,
  onStep: (node: YamlNode | null, key: YamlNode | undefined) => void,
): void {
  let node: unknown = doc.contents;
  for (const part of path) {
    if (isAlias(node)) node = aliases.get(node);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(part));
      if (pair === undefined) return;
      node = pair.value;
      onStep(pair.value as YamlNode | null, pair.key as YamlNode);
    } else if (isSeq(node) && typeof part === 'number') {
      if (part < 0 || part >= node.items.length) return;
      node = node.items[part];
      onStep(node as YamlNode | null, undefined);
    } else {
      return;
    }
  }
}

function startOf(node: YamlNode | null | undefined): number | undefined {
  return node?.range?.[0];
}

function makeLocator(doc: Document, aliases: Map<Alias, YamlNode>, file: string, position: Position): SpecLocator {
  return {
    file,
    position(path, atKey = false) {
      let offset = startOf(doc.contents);
      let keyOffset: number | undefined;
      walk(doc, aliases, path, (node, key) => {
        keyOffset = startOf(key);
        // An empty value (`steps:`) has no node of its own: point at its key.
        offset = startOf(node) ?? keyOffset ?? offset;
      });
      const chosen = atKey ? (keyOffset ?? offset) : offset;
      return chosen === undefined ? undefined : position(chosen);
    },
  };
}

