import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Generous, because CI may be a shared 2-core machine: a test that takes 40 s idle can take
    // three times as long beside other work, and must not fail for it. A real hang still ends here.
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
