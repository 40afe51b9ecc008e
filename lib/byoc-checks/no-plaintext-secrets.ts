import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleFindings } from 'cdk-nag';
import { rendered } from './template';

/** Words of a variable name that say its value is a secret. */
const SECRET_WORDS = new Set(['PASSWORD', 'PASSWD', 'PWD', 'PASS', 'SECRET', 'SECRETS', 'TOKEN', 'APIKEY', 'KEY', 'PRIVATE', 'CREDENTIAL', 'CREDENTIALS', 'CREDS', 'SEED', 'AUTH']);
/** Last words of a name that say the value only points at a secret or describes it. */
const REFERENCE_WORDS = new Set(['ARN', 'ARNS', 'ID', 'NAME', 'FILE', 'PATH', 'URL', 'ENDPOINT', 'AUDIENCE', 'ISSUER', 'PREFIX', 'REGION', 'HOST', 'PORT']);

/** Values that are secrets whatever the variable is called. */
export const SECRET_VALUE_PATTERNS: readonly [string, RegExp][] = [
  ['private key', /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/],
  ['AWS access key', /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/],
  ['NATS seed', /\bS[UAONCPX][A-Z2-7]{56}\b/],
  ['API token', /\b(?:sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-[A-Za-z0-9-]{10,})/],
  // A password written into a configuration, rather than a `$VARIABLE` or `${VARIABLE}` the program resolves.
  ['literal password', /\bpass(?:word)?\s*[:=]\s*(?!\$)["']?[^\s"'$,}]+/i],
];

/** Splits `BYOC_LLM_TOKEN_KEY` or `apiKey` into upper-case words. */
function words(name: string): string[] {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w.toUpperCase());
}

/** True when the value refers to a resource (a `Ref`, `Fn::GetAtt` or `arn:`), which cannot be a secret's value. */
function isReference(value: unknown): boolean {
  if (typeof value === 'string') return value.startsWith('arn:');
  return JSON.stringify(value).match(/"(Ref|Fn::GetAtt)"/) !== null;
}

/**
 * Byoc-NoPlaintextSecretEnv: no container of an ECS task definition has a secret in its plaintext `Environment`
 * (readable by anyone who may describe the task definition, and kept in every revision). One finding per
 * variable, `[<NAME>]`: a name that says secret (`DB_PASSWORD`, `apiKey`, `SCM_TOKEN`) whose value is not a
 * reference (`..._ARN`, a `Ref` or `Fn::GetAtt`, an `arn:`), or any value that looks like a secret (a private key,
 * an AWS access key, a NATS seed, a provider API token, `password: <literal>` in a configuration). Give secrets
 * with `secrets` (ECS reads them from Secrets Manager at start) or let the program read them by ARN.
 */
export function NoPlaintextSecretEnv(node: CfnResource): NagRuleCompliance | NagRuleFindings {
  if (node.cfnResourceType !== 'AWS::ECS::TaskDefinition') return NagRuleCompliance.NOT_APPLICABLE;
  const findings = new Set<string>();
  for (const c of rendered(node).Properties.ContainerDefinitions ?? []) {
    for (const { Name: name, Value: value } of c.Environment ?? []) {
      const w = words(String(name));
      const secretName = w.some((x) => SECRET_WORDS.has(x)) && !REFERENCE_WORDS.has(w[w.length - 1]);
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      if ((secretName && !isReference(value)) || SECRET_VALUE_PATTERNS.some(([, re]) => re.test(text))) findings.add(String(name));
    }
  }
  return findings.size > 0 ? [...findings] : NagRuleCompliance.COMPLIANT;
}
