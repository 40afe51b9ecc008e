/**
 * Snapshot serializer: replaces asset hashes (64 hex digits not preceded by `sha256:`) so snapshots change
 * only when a template really changes. Image digests (`@sha256:...`) are kept: they are what runs.
 */
const ASSET_HASH = /(?<!sha256:)\b[0-9a-f]{64}\b/g;

function strip(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(ASSET_HASH, '[ASSET_HASH]');
  if (Array.isArray(value)) return value.map(strip);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(ASSET_HASH, '[ASSET_HASH]'), strip(v)]));
  }
  return value;
}

const STRIPPED = Symbol('stripped');

module.exports = {
  test(value: unknown): boolean {
    return !!value && typeof value === 'object' && !(value as Record<symbol, unknown>)[STRIPPED] && JSON.stringify(value).match(ASSET_HASH) !== null;
  },
  serialize(value: unknown, config: unknown, indentation: string, depth: number, refs: unknown, printer: (v: unknown, ...rest: unknown[]) => string): string {
    const stripped = strip(value) as Record<symbol, unknown>;
    Object.defineProperty(stripped, STRIPPED, { value: true, enumerable: false });
    return printer(stripped, config, indentation, depth, refs);
  },
};
