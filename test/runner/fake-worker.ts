import { fileURLToPath } from 'node:url';

/** Path of a fake worker in test/fixtures/workers. */
export function fakeWorker(name: string): string {
  return fileURLToPath(new URL(`../fixtures/workers/${name}.mjs`, import.meta.url));
}
