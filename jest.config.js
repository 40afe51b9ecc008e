/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Transpile only (no type-check per test file: `npm run build` type-checks once). ts-jest is pure JS, so
  // the lock file holds no platform-specific native binaries that this machine's registry cannot serve.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  setupFiles: ['<rootDir>/test/setup.ts'],
  snapshotSerializers: ['<rootDir>/test/asset-hash-serializer.ts'],
  testTimeout: 180000,
  // Synthesis is CPU-bound: one worker per core.
  maxWorkers: 2,
};
