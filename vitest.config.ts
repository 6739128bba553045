import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Training tests run real tfjs steps on 2 cores; give them room without hiding hangs.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
