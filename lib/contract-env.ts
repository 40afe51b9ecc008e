import canonicalize from 'canonicalize';
import { BOUNDARY_CONTRACT, BoundaryContract, checkContract, contractHash } from './boundary-contract';

/**
 * How a boundary contract reaches the services that use it: `BYOC_CONTRACT` (its canonical JSON) with `BYOC_CONTRACT_HASH`.
 * Kept apart from `lib/contract-input.ts` so that the agent runtime, which only reads the bounds of the kinds it sends,
 * does not bundle a JSON Schema validator: it checks the hash (the contract synth validated) and `checkContract`.
 */

/** Environment variables of the services that enforce the contract. */
export const CONTRACT_ENV = { contract: 'BYOC_CONTRACT', hash: 'BYOC_CONTRACT_HASH' } as const;

/** The contract's canonical JSON (RFC 8785), as services receive it in `BYOC_CONTRACT`. */
export function contractJson(contract: BoundaryContract = BOUNDARY_CONTRACT): string {
  return canonicalize(contract)!;
}

/** The environment a service that enforces `contract` receives. */
export function contractEnvironment(contract: BoundaryContract = BOUNDARY_CONTRACT): Record<string, string> {
  return { [CONTRACT_ENV.contract]: contractJson(contract), [CONTRACT_ENV.hash]: contractHash(contract) };
}

/** The checks of `checkContract`, on a value not yet known to be a contract. */
function checkedLightly(value: unknown): BoundaryContract {
  const c = value as BoundaryContract;
  if (!c || typeof c !== 'object' || !Number.isInteger(c.version) || !Array.isArray(c.kinds) || c.kinds.some((k) => !k || typeof k !== 'object' || !k.schema || typeof k.schema.fields !== 'object')) {
    throw new Error(`${CONTRACT_ENV.contract} is not a boundary contract (version and kinds, each with its schema)`);
  }
  try {
    checkContract(c);
  } catch (e) {
    throw new Error(`${CONTRACT_ENV.contract}: ${(e as Error).message}`);
  }
  return c;
}

/**
 * The contract a service uses, from its environment: the kit's own when `BYOC_CONTRACT` is unset, else the given one,
 * which must pass `validate` and match `BYOC_CONTRACT_HASH` (required with it). Throws an `Error` naming the variable.
 */
export function contractFromEnvironment(env: NodeJS.ProcessEnv = process.env, validate: (value: unknown) => BoundaryContract = checkedLightly): BoundaryContract {
  const text = env[CONTRACT_ENV.contract];
  const hash = env[CONTRACT_ENV.hash];
  if (text === undefined) {
    if (hash !== undefined && hash !== contractHash()) throw new Error(`${CONTRACT_ENV.hash} names contract ${hash.slice(0, 12)}, but ${CONTRACT_ENV.contract} is unset and the built-in contract is ${contractHash().slice(0, 12)}`);
    return BOUNDARY_CONTRACT;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${CONTRACT_ENV.contract} is not JSON`);
  }
  let contract: BoundaryContract;
  try {
    contract = validate(parsed);
  } catch (e) {
    throw new Error((e as Error).message);
  }
  if (hash === undefined) throw new Error(`${CONTRACT_ENV.hash} is missing: it must be given with ${CONTRACT_ENV.contract}`);
  if (contractHash(contract) !== hash) throw new Error(`${CONTRACT_ENV.contract} has hash ${contractHash(contract).slice(0, 12)}, not ${hash.slice(0, 12)} as ${CONTRACT_ENV.hash} says`);
  return contract;
}
