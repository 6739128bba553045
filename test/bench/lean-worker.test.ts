import { describe, expect, it } from 'vitest';
import { rewriteModule } from '../../src/bench/lean-worker.js';

describe('rewriteModule (the what-if worker of npm run bench)', () => {
  it('turns ESM imports of tfjs packages into require and the execa IPC import into process.send', () => {
    const source = [
      "import * as tf from '@tensorflow/tfjs';",
      "import { backend_util, util as u } from '@tensorflow/tfjs-core';",
      "import '@tensorflow/tfjs-backend-wasm';",
      "import { getOneMessage, sendMessage } from 'execa';",
      "import { other } from './other.js';",
      'tf.tidy(() => 1);',
    ].join('\n');
    const { text, rewrites } = rewriteModule(source);
    expect(rewrites).toBe(4);
    expect(text).toContain("import { createRequire as __mpxRequire } from 'node:module';");
    expect(text).toContain("const tf = __mpxRequire(import.meta.url)('@tensorflow/tfjs');");
    expect(text).toContain("const { backend_util, util: u } = __mpxRequire(import.meta.url)('@tensorflow/tfjs-core');");
    expect(text).toContain("__mpxRequire(import.meta.url)('@tensorflow/tfjs-backend-wasm');");
    expect(text).toContain("process.once('message', resolve)");
    expect(text).not.toContain("from 'execa'");
    expect(text).toContain("import { other } from './other.js';");
  });

  it('leaves a module without such imports alone', () => {
    expect(rewriteModule("import { x } from './x.js';\n")).toEqual({ text: "import { x } from './x.js';\n", rewrites: 0 });
  });
});
