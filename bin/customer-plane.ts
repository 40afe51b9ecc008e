#!/usr/bin/env node
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { createApp, projectRoot } from '../lib/app';
import { loadCustomerPlaneConfig } from '../customer-plane/config';
import { CustomerPlaneStack } from '../customer-plane/stack';

/** The stack name the customer deploys. */
export const CUSTOMER_PLANE_STACK = 'ByocCustomerPlane';

/**
 * Builds the customer-plane app from a configuration file: `-c config=FILE`, else `BYOC_CONFIG`, else
 * `config/example-customer.json`.
 */
export function buildCustomerPlaneApp(app: App = createApp()): App {
  const configured = app.node.tryGetContext('config') ?? process.env.BYOC_CONFIG;
  const file = configured ? path.resolve(String(configured)) : path.join(projectRoot(), 'config', 'example-customer.json');
  new CustomerPlaneStack(app, CUSTOMER_PLANE_STACK, loadCustomerPlaneConfig(file));
  return app;
}

if (require.main === module) {
  buildCustomerPlaneApp().synth();
}
