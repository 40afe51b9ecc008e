/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Transpile only (no type-check per test file: `npm run build` type-checks once). ts-jest is pure JS, so
  // the lock file holds no platform-specific native binaries that this machine's registry cannot serve.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  setupFiles: ['<rootDir>/test/setup.ts'],
  // One temp folder for the run (the workers' and their children's TMPDIR): the cdk.out* folders of Apps built
  // without an outdir are removed with it; anything else left there is named.
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  snapshotSerializers: ['<rootDir>/test/asset-hash-serializer.ts'],
  testTimeout: 180000,
  // Synthesis is CPU-bound: one worker per core.
  maxWorkers: 2,
};
