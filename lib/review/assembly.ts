import * as fs from 'fs';
import * as path from 'path';
import { BundleError } from '../signer';

/**
 * A synthesized cloud assembly as the review report reads it: every template (root stacks and, below them, every
 * nested stack, found through the `aws:asset:path` of its `AWS::CloudFormation::Stack` resource), every resource
 * with its construct path, and a resolver that follows `Ref`, `Fn::GetAtt` and a nested stack's parameters back
 * to the resource they name. Nothing here knows the plane: it reads CloudFormation.
 */
export interface Template {
  /** File name in the assembly folder. */
  readonly file: string;
  /** The root stack the template belongs to (its own name for a root template). */
  readonly stack: string;
  readonly body: any;
  /** For a nested template: the parent's template and the logical ID of its stack resource. */
  readonly parent?: { readonly template: Template; readonly logicalId: string };
}

export interface Resource {
  readonly template: Template;
  readonly logicalId: string;
  readonly type: string;
  /** The construct path (`aws:cdk:path`), or `<file>#<logicalId>` when the template has none. */
  readonly path: string;
  readonly props: any;
  readonly raw: any;
}

export class Assembly {
  public readonly templates: Template[] = [];
  public readonly resources: Resource[] = [];
  /** `validation-report.json`: the result of every validation plugin of the last synth, if written. */
  public readonly validationReport?: any;
  /** The accounts the stacks are deployed to, where the assembly names one (`aws://ACCOUNT/REGION`). */
  public readonly accounts = new Set<string>();
  private readonly index = new Map<string, Resource>();

  constructor(public readonly dir: string) {
    let manifest: any;
    try {
      manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no manifest.json' : 'its manifest.json is not JSON';
      throw new BundleError('not-an-assembly', `${dir} is not a cloud assembly (${why}): synthesize first (npm run synth writes cdk.out/customer-plane and cdk.out/control-plane)`);
    }
    const stacks = Object.entries<any>(manifest.artifacts ?? {}).filter(([, a]) => a.type === 'aws:cloudformation:stack');
    if (stacks.length === 0) throw new BundleError('not-an-assembly', `${dir} holds no CloudFormation stack`);
    for (const [name, artifact] of stacks) {
      const account = /^aws:\/\/(\d{12})\//.exec(String(artifact.environment ?? ''))?.[1];
      if (account) this.accounts.add(account);
      this.load(artifact.properties?.templateFile ?? `${name}.template.json`, name);
    }
    const report = path.join(dir, 'validation-report.json');
    if (fs.existsSync(report)) this.validationReport = JSON.parse(fs.readFileSync(report, 'utf8'));
  }

  private load(file: string, stack: string, parent?: Template['parent']): void {
    let body: any;
    try {
      body = JSON.parse(fs.readFileSync(path.join(this.dir, file), 'utf8'));
    } catch (e) {
      throw new BundleError('not-an-assembly', `${this.dir}: cannot read template ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const template: Template = { file, stack, body, parent };
    this.templates.push(template);
    for (const [logicalId, raw] of Object.entries<any>(body.Resources ?? {})) {
      const r: Resource = {
        template, logicalId, type: raw.Type, raw, props: raw.Properties ?? {},
        path: raw.Metadata?.['aws:cdk:path'] ?? `${file}#${logicalId}`,
      };
      this.resources.push(r);
      this.index.set(`${file}\0${logicalId}`, r);
    }
    for (const [logicalId, raw] of Object.entries<any>(body.Resources ?? {})) {
      if (raw.Type !== 'AWS::CloudFormation::Stack') continue;
      const nested = this.nestedTemplateFile(raw);
      if (nested) this.load(nested, stack, { template, logicalId });
    }
  }

  /**
   * The file of a nested stack's template: its `aws:asset:path` metadata (written when the CDK CLI asks for
   * asset metadata), else the asset whose hash its `TemplateURL` names, from the assembly's asset manifests.
   */
  private nestedTemplateFile(raw: any): string | undefined {
    const file = raw.Metadata?.['aws:asset:path'];
    if (typeof file === 'string' && fs.existsSync(path.join(this.dir, file))) return file;
    const hash = /[0-9a-f]{64}/.exec(JSON.stringify(raw.Properties?.TemplateURL ?? ''))?.[0];
    if (!hash) return undefined;
    this.assetFiles ??= new Map(fs.readdirSync(this.dir).filter((f) => f.endsWith('.assets.json')).flatMap((f) =>
      Object.entries<any>(JSON.parse(fs.readFileSync(path.join(this.dir, f), 'utf8')).files ?? {}).map(([h, a]) => [h, String(a.source?.path ?? '')] as [string, string])));
    const found = this.assetFiles.get(hash);
    return found && found.endsWith('.template.json') && fs.existsSync(path.join(this.dir, found)) ? found : undefined;
  }

  private assetFiles?: Map<string, string>;

  /** Resources of these types, in template order (root first). */
  public ofType(...types: string[]): Resource[] {
    return this.resources.filter((r) => types.includes(r.type));
  }

  public resource(template: Template, logicalId: string): Resource | undefined {
    return this.index.get(`${template.file}\0${logicalId}`);
  }

  /**
   * What a template value refers to: `{Ref}` or `{Fn::GetAtt}` of a resource (followed through nested stack
   * parameters to the parent's value), with the attribute named, or undefined for anything else.
   */
  public target(value: any, template: Template): { resource: Resource; attribute?: string } | undefined {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    if (typeof value.Ref === 'string') {
      const r = this.resource(template, value.Ref);
      if (r) return { resource: r };
      const passed = this.parameterValue(template, value.Ref);
      return passed ? this.target(passed.value, passed.template) : undefined;
    }
    const att = value['Fn::GetAtt'];
    if (Array.isArray(att) && typeof att[0] === 'string') {
      const r = this.resource(template, att[0]);
      return r ? { resource: r, attribute: String(att[1]) } : undefined;
    }
    return undefined;
  }

  /** The value a parent passes to a nested template's parameter. */
  public parameterValue(template: Template, name: string): { value: any; template: Template } | undefined {
    if (!template.parent || !template.body.Parameters?.[name]) return undefined;
    const stackResource = this.resource(template.parent.template, template.parent.logicalId);
    const value = stackResource?.props.Parameters?.[name];
    return value === undefined ? undefined : { value, template: template.parent.template };
  }

  /**
   * A template value as one readable line: literals as they are, `${AWS::Region}` for pseudo parameters,
   * `{Plane/Data/Postgres}` for a resource (its construct path below the stack), `{…}.Attr` for an attribute,
   * joins joined; anything else as compact JSON.
   */
  public show(value: any, template: Template): string {
    if (value === null || value === undefined) return '';
    if (typeof value !== 'object') return String(value);
    if (Array.isArray(value)) return value.map((v) => this.show(v, template)).join(', ');
    if (typeof value.Ref === 'string') {
      if (value.Ref.startsWith('AWS::')) return `\${${value.Ref}}`;
      const t = this.target(value, template);
      if (t) return `{${this.shortPath(t.resource)}}${t.attribute ? `.${t.attribute}` : ''}`;
      const passed = this.parameterValue(template, value.Ref);
      if (passed) return this.show(passed.value, passed.template);
      return `\${${value.Ref}}`;
    }
    if (value['Fn::GetAtt']) {
      const t = this.target(value, template);
      return t ? `{${this.shortPath(t.resource)}}.${t.attribute}` : `\${${[].concat(value['Fn::GetAtt']).join('.')}}`;
    }
    const join = value['Fn::Join'];
    if (Array.isArray(join) && Array.isArray(join[1])) return join[1].map((v: any) => this.show(v, template)).join(join[0]);
    const sub = value['Fn::Sub'];
    if (typeof sub === 'string') return sub;
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0].startsWith('Fn::')) {
      return `${keys[0].slice(4)}(${[].concat(value[keys[0]]).map((v) => this.show(v, template)).join(', ')})`;
    }
    return JSON.stringify(value);
  }

  /** A resource's construct path without its root stack's name and CDK's `/Resource` or `/Default` leaf. */
  public shortPath(r: Resource): string {
    const p = r.path.startsWith(`${r.template.stack}/`) ? r.path.slice(r.template.stack.length + 1) : r.path;
    return p.replace(/\/(Resource|Default)$/, '');
  }

  /** A name a person knows the resource by: its physical name where the template sets one, else its short path. */
  public label(r: Resource): string {
    const p = r.props;
    if (r.type === 'AWS::EFS::AccessPoint' && typeof p.RootDirectory?.Path === 'string') return `access point ${p.RootDirectory.Path}`;
    const name = [p.Name, p.LogGroupName, p.DBInstanceIdentifier, p.ReplicationGroupId, p.BucketName, p.TableName, p.RepositoryName, p.Family, p.ServiceName, p.FunctionName]
      .find((v) => typeof v === 'string');
    return name ?? this.shortPath(r);
  }
}

/** Every statement of a policy document (a single statement object is a list of one). */
export function statementsOf(document: any): any[] {
  const s = document?.Statement;
  return s === undefined ? [] : Array.isArray(s) ? s : [s];
}

/** A value that may be one item or a list, as a list. */
export function list<T = any>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}
