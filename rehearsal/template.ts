/**
 * Reads a synthesized customer plane (root and nested templates) the way CloudFormation would, far enough
 * to start its ECS services: resources by logical ID, intrinsic functions resolved against the physical IDs
 * and attributes the rehearsal gave each resource, nested stacks' parameters and outputs followed.
 */
import * as fs from 'fs';
import * as path from 'path';

type Json = any;

/** What a resource resolves to: its `Ref` and its `Fn::GetAtt` attributes. */
export interface Physical {
  readonly ref: string;
  readonly attributes?: Record<string, string>;
}

export class RehearsalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RehearsalError';
  }
}

/** One template of the assembly, with the context its intrinsics resolve in. */
export class StackTemplate {
  public readonly resources: Record<string, Json>;
  /** Physical IDs of this template's resources, filled as the rehearsal "creates" them. */
  public readonly physical: Record<string, Physical> = {};
  /** Nested stacks of this template, by logical ID. */
  public readonly nested: Record<string, StackTemplate> = {};
  private parameterValues: Record<string, string> = {};

  constructor(
    public readonly file: string,
    public readonly template: Json,
    public readonly pseudo: Record<string, string>,
    public readonly parent?: StackTemplate,
  ) {
    this.resources = template.Resources ?? {};
  }

  /** Resources of one type, as [logicalId, resource]. */
  ofType(type: string): Array<[string, Json]> {
    return Object.entries(this.resources).filter(([, r]) => r.Type === type);
  }

  /** Sets the nested stack's parameters from its parent's `Parameters` property, resolved in the parent. */
  bindParameters(values: Record<string, string>): void {
    this.parameterValues = values;
  }

  /** Resolves a value with intrinsic functions to plain JSON. Throws, naming the expression, on what it cannot resolve. */
  resolve(v: Json, where = this.file): Json {
    if (Array.isArray(v)) return v.map((x) => this.resolve(x, where));
    if (v === null || typeof v !== 'object') return v;
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const [fn] = keys;
      const arg = v[fn];
      switch (fn) {
        case 'Ref': return this.ref(arg, where);
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(arg) ? arg : String(arg).split(/\.(.+)/);
          return this.getAtt(id, attr, where);
        }
        case 'Fn::Join': {
          const [sep, parts] = arg;
          return (this.resolve(parts, where) as unknown[]).map(String).join(sep);
        }
        case 'Fn::Select': {
          const [i, list] = this.resolve(arg, where);
          return list[Number(i)];
        }
        case 'Fn::Split': {
          const [sep, s] = this.resolve(arg, where);
          return String(s).split(sep);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg) ? arg : [arg, {}];
          const bound = this.resolve(vars, where) as Record<string, string>;
          return String(text).replace(/\$\{([^!}][^}]*)\}/g, (_, name: string) => {
            if (name in bound) return bound[name];
            const [id, attr] = name.split(/\.(.+)/);
            return String(attr ? this.getAtt(id, attr, where) : this.ref(id, where));
          });
        }
        default:
          if (fn.startsWith('Fn::')) throw new RehearsalError(`${where}: ${fn} is not something the rehearsal resolves`);
      }
    }
    return Object.fromEntries(keys.map((k) => [k, this.resolve(v[k], where)]));
  }

  private ref(name: string, where: string): string {
    if (name in this.pseudo) return this.pseudo[name];
    if (name in this.parameterValues) return this.parameterValues[name];
    const p = this.physical[name];
    if (p) return p.ref;
    if (this.template.Parameters?.[name]?.Default !== undefined) return String(this.template.Parameters[name].Default);
    if (this.resources[name]) throw new RehearsalError(`${where}: Ref ${name} (${this.resources[name].Type}) has no physical ID in the rehearsal`);
    throw new RehearsalError(`${where}: Ref ${name} names nothing in ${path.basename(this.file)}`);
  }

  private getAtt(id: string, attr: string, where: string): string {
    const r = this.resources[id];
    if (r?.Type === 'AWS::CloudFormation::Stack' && attr.startsWith('Outputs.')) {
      const child = this.nested[id];
      if (!child) throw new RehearsalError(`${where}: nested stack ${id} is not loaded`);
      const out = child.template.Outputs?.[attr.slice('Outputs.'.length)];
      if (!out) throw new RehearsalError(`${where}: ${id} has no output ${attr}`);
      return child.resolve(out.Value, child.file);
    }
    const p = this.physical[id];
    // Attributes no process reads (ARNs in policies, IDs of networking) get a recognisable stand-in.
    const value = p ? p.attributes?.[attr] ?? (attr === 'Arn' ? `arn:aws:rehearsal:${this.pseudo['AWS::Region']}:${this.pseudo['AWS::AccountId']}:${p.ref}` : `${p.ref}.${attr}`) : undefined;
    if (value === undefined) throw new RehearsalError(`${where}: Fn::GetAtt ${id}.${attr} (${r?.Type ?? 'unknown resource'}) has no value in the rehearsal`);
    return value;
  }

  /** This template and every nested one, depth first. */
  *all(): Generator<StackTemplate> {
    yield this;
    for (const child of Object.values(this.nested)) yield* child.all();
  }
}

/**
 * Loads the root template of `stackName` in a cloud assembly and its nested templates (found through each
 * nested stack resource's `aws:asset:path` metadata, as CDK writes them).
 */
export function loadAssembly(dir: string, stackName: string, pseudo: Record<string, string>): StackTemplate {
  const rootFile = path.join(dir, `${stackName}.template.json`);
  if (!fs.existsSync(rootFile)) throw new RehearsalError(`${rootFile} not found: synthesize the customer plane first (npm run synth:customer)`);
  // Nested templates are file assets of the root stack: the TemplateURL ends in the asset's hash.
  const manifest = path.join(dir, `${stackName}.assets.json`);
  const assets: Record<string, { source: { path: string } }> = fs.existsSync(manifest) ? JSON.parse(fs.readFileSync(manifest, 'utf8')).files ?? {} : {};
  const load = (file: string, parent?: StackTemplate) => {
    const t = new StackTemplate(file, JSON.parse(fs.readFileSync(file, 'utf8')), pseudo, parent);
    for (const [id, r] of t.ofType('AWS::CloudFormation::Stack')) {
      const url = JSON.stringify(r.Properties?.TemplateURL ?? '');
      const hash = /([0-9a-f]{64})\.json/.exec(url)?.[1];
      const asset = r.Metadata?.['aws:asset:path'] ?? (hash && assets[hash]?.source.path);
      if (!asset) throw new RehearsalError(`${file}: the template of nested stack ${id} is not in the assembly`);
      t.nested[id] = load(path.join(dir, asset), t);
    }
    return t;
  };
  return load(rootFile);
}

/** `Key`/`Value` or `Name`/`Value` lists (ECS environment, tags) as a record. */
export function nameValues(list: Array<{ Name: string; Value: string }> | undefined): Record<string, string> {
  return Object.fromEntries((list ?? []).map((e) => [e.Name, String(e.Value)]));
}
