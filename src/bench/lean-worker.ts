/**
 * What-if for the per-run overhead: a copy of the built worker in which (1) every ESM `import` of a tfjs package is
 * a `require` (an ESM import of a CommonJS package makes Node lex its source, and that of every package it
 * re-exports, for named exports: ~150 ms per process for @tensorflow/tfjs) and (2) the worker's two IPC calls use
 * Node's `process.send` / `process.once('message')` instead of importing execa (~90 ms; the parent keeps execa, whose
 * non-strict messages are plain `process.send` messages). The copy goes to `dist/.bench-lean/` (beside the real
 * build, so packages resolve the same way); nothing in `dist/worker` changes.
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LeanWorker {
  workerFile: string;
  /** Import statements rewritten (tfjs imports and the execa import). */
  rewrites: number;
  remove(): void;
}

const REQUIRE = '__mpxRequire';
const TFJS_NAMESPACE = /^import \* as (\w+) from '(@tensorflow\/[\w-]+)';$/gm;
const TFJS_NAMED = /^import \{([^}]*)\} from '(@tensorflow\/[\w-]+)';$/gm;
const TFJS_BARE = /^import '(@tensorflow\/[\w-]+)';$/gm;
const EXECA_IPC = /^import \{ getOneMessage, sendMessage \} from 'execa';$/m;
const NODE_IPC = [
  "const getOneMessage = () => new Promise((resolve) => process.once('message', resolve));",
  'const sendMessage = (message) => new Promise((resolve, reject) => process.send(message, (error) => (error ? reject(error) : resolve())));',
].join('\n');

/** The rewritten module text and how many statements changed. */
export function rewriteModule(text: string): { text: string; rewrites: number } {
  let rewrites = 0;
  const load = (name: string) => `${REQUIRE}(import.meta.url)('${name}')`;
  let out = text
    .replace(TFJS_NAMESPACE, (_all, local: string, name: string) => (rewrites++, `const ${local} = ${load(name)};`))
    .replace(TFJS_NAMED, (_all, names: string, name: string) => {
      rewrites++;
      const bindings = names.split(',').map((n) => n.trim()).filter(Boolean).map((n) => n.replace(/\s+as\s+/, ': '));
      return `const { ${bindings.join(', ')} } = ${load(name)};`;
    })
    .replace(TFJS_BARE, (_all, name: string) => (rewrites++, `${load(name)};`));
  if (rewrites > 0) out = `import { createRequire as ${REQUIRE} } from 'node:module';\n${out}`;
  if (EXECA_IPC.test(out)) {
    out = out.replace(EXECA_IPC, NODE_IPC);
    rewrites++;
  }
  return { text: out, rewrites };
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return jsFiles(path);
    return name.endsWith('.js') ? [path] : [];
  });
}

/** Copies `distDir` (without bench output) to `distDir/.bench-lean` and rewrites the worker's modules there. */
export function buildLeanWorker(distDir: string): LeanWorker {
  const target = join(distDir, '.bench-lean');
  rmSync(target, { recursive: true, force: true });
  for (const name of readdirSync(distDir)) {
    if (name === 'bench' || name.startsWith('.')) continue;
    cpSync(join(distDir, name), join(target, name), { recursive: true });
  }
  let rewrites = 0;
  for (const file of jsFiles(join(target, 'worker'))) {
    const result = rewriteModule(readFileSync(file, 'utf8'));
    if (result.rewrites > 0) writeFileSync(file, result.text);
    rewrites += result.rewrites;
  }
  const workerFile = join(target, 'worker', 'main.js');
  if (!existsSync(workerFile)) throw new Error(`bench: no worker entry in ${target}`);
  return { workerFile, rewrites, remove: () => rmSync(target, { recursive: true, force: true }) };
}
