#!/usr/bin/env node
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { createApp, projectRoot } from '../lib/app';
import { runApp } from '../lib/errors';
import { loadControlPlaneConfig } from '../control-plane/config';
import { ControlPlaneStack } from '../control-plane/stack';

/** The stack name vendor operations deploy. */
export const CONTROL_PLANE_STACK = 'ByocControlPlane';

/**
 * Builds the control-plane app from a configuration file: `-c config=FILE`, else `BYOC_VENDOR_CONFIG`, else
 * `config/example-vendor.json`.
 */
export function buildControlPlaneApp(app: App = createApp()): App {
  const configured = app.node.tryGetContext('config') ?? process.env.BYOC_VENDOR_CONFIG;
  const file = configured ? path.resolve(String(configured)) : path.join(projectRoot(), 'config', 'example-vendor.json');
  new ControlPlaneStack(app, CONTROL_PLANE_STACK, loadControlPlaneConfig(file));
  return app;
}

if (require.main === module) {
  // An invalid setting prints `Invalid setting '<path>': <problem>. Fix: <fix>`, no stack trace, and exits 1.
  runApp(() => buildControlPlaneApp().synth());
}
