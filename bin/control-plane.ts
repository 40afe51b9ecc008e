#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { createApp } from '../lib/app';
import { ControlPlaneStack } from '../control-plane/stack';

/** The stack name vendor operations deploy. */
export const CONTROL_PLANE_STACK = 'ByocControlPlane';

export function buildControlPlaneApp(app: App = createApp()): App {
  new ControlPlaneStack(app, CONTROL_PLANE_STACK);
  return app;
}

if (require.main === module) {
  buildControlPlaneApp().synth();
}
