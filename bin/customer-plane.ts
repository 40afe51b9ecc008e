#!/usr/bin/env node
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { createApp, projectRoot } from '../lib/app';
import { PropError, runApp } from '../lib/errors';
import { asSettingError, loadCustomerPlaneConfig } from '../customer-plane/config';
import { CustomerPlaneStack } from '../customer-plane/stack';

/** The stack name the customer deploys. */
export const CUSTOMER_PLANE_STACK = 'ByocCustomerPlane';

/**
 * Builds the customer-plane app from a configuration file: `-c config=FILE`, else `BYOC_CONFIG`, else
 * `config/example-customer.json`. An invalid setting, found by the loader or by the constructs, is a
 * `PropError` naming the setting of the file: `Invalid setting '<path>': <problem>. Fix: <fix>`.
 */
export function buildCustomerPlaneApp(app: App = createApp()): App {
  const configured = app.node.tryGetContext('config') ?? process.env.BYOC_CONFIG;
  const file = configured ? path.resolve(String(configured)) : path.join(projectRoot(), 'config', 'example-customer.json');
  const props = loadCustomerPlaneConfig(file);
  asSettings(() => new CustomerPlaneStack(app, CUSTOMER_PLANE_STACK, props));
  return app;
}

/** Runs `f`; a construct's `PropError` is rethrown naming the setting of the file (`logRetention` as `logRetentionDays`). */
function asSettings(f: () => void): void {
  try {
    f();
  } catch (e) {
    throw e instanceof PropError ? asSettingError(e) : e;
  }
}

if (require.main === module) {
  runApp(() => {
    const app = buildCustomerPlaneApp();
    asSettings(() => app.synth());
  });
}
