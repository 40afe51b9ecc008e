import { CfnResource, Stack } from 'aws-cdk-lib';

/** A resource as its template holds it: type, properties (PascalCase) and policies, overrides applied. */
export interface RenderedResource {
  readonly Type: string;
  readonly Properties: Record<string, any>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

/**
 * The resource exactly as it is written to its template: rendered by CDK's own renderer (the one synthesis
 * uses, so escape-hatch overrides are in it) and resolved in its stack (tokens become `Ref`/`Fn::GetAtt`).
 * The rules read this rather than the L1's typed props, which property overrides bypass.
 */
export function rendered(node: CfnResource): RenderedResource {
  const stack = Stack.of(node);
  const fragment = stack.resolve((node as any)._toCloudFormation()) as { Resources: Record<string, RenderedResource> };
  const resource = Object.values(fragment.Resources)[0];
  if (!resource?.Type) throw new Error(`${node.node.path}: CDK rendered no resource; the rules cannot read it`);
  return { ...resource, Properties: resource.Properties ?? {} };
}

/** The logical ID of a `Ref` or `Fn::GetAtt` to a resource of the same template, else undefined. */
export function referencedLogicalId(value: unknown): string | undefined {
  const v = value as any;
  if (v && typeof v === 'object') {
    if (typeof v.Ref === 'string') return v.Ref;
    if (Array.isArray(v['Fn::GetAtt'])) return v['Fn::GetAtt'][0];
  }
  return undefined;
}

/** Every CloudFormation resource of the template `node` is in (nested stacks are templates of their own). */
export function resourcesOfTemplate(node: CfnResource): CfnResource[] {
  const stack = Stack.of(node);
  return stack.node.findAll().filter((c): c is CfnResource => CfnResource.isCfnResource(c) && Stack.of(c) === stack);
}

/** A value written out for a finding or a comparison: strings as they are, intrinsics as `${...}`. */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as any;
  if (v && typeof v === 'object') {
    if (Array.isArray(v['Fn::Join'])) return (v['Fn::Join'][1] as unknown[]).map(render).join(v['Fn::Join'][0]);
    if (typeof v.Ref === 'string') return `\${${v.Ref}}`;
    if (Array.isArray(v['Fn::GetAtt'])) return `\${${v['Fn::GetAtt'].join('.')}}`;
  }
  return JSON.stringify(value);
}
