import * as fs from 'fs';
import * as path from 'path';
import { assemblyImages, Release, RELEASE, verifyBundle } from '../bundle';
import { BundleError } from '../signer';
import { Assembly } from './assembly';
import { ReportDocument, toHtml, toMarkdown } from './document';
import { Model, readModel } from './model';
import { buildReport, ReleaseInfo } from './report';

export { Assembly } from './assembly';
export { readModel } from './model';
export type { Model, Role, SecurityGroupRule, Statement, Workload, DataStore } from './model';
export { buildReport } from './report';
export { toHtml, toMarkdown } from './document';

export interface ReviewOptions {
  /** A signed bundle of this release: its version, signer, images and contract hash go in the report. */
  readonly bundle?: string;
  /** Verify the bundle against this public key first (signature, every file, expiry; no downgrade memory). */
  readonly publicKey?: string;
}

export interface ReviewResult {
  readonly html: string;
  readonly markdown: string;
  readonly model: Model;
  readonly document: ReportDocument;
  readonly release?: Release;
}

/** Reads the release of a bundle for the report, verifying it first when a public key is given. */
function releaseOf(bundle: string, publicKey?: string): Omit<ReleaseInfo, 'assemblyImages'> {
  if (publicKey) {
    const v = verifyBundle(bundle, publicKey, { downgradeCheck: false });
    return { release: v.release, bundle, verifiedWith: v.publicKeyFingerprint };
  }
  const file = path.join(bundle, RELEASE);
  if (!fs.existsSync(file)) throw new BundleError('not-a-bundle', `${bundle} has no ${RELEASE}: give a bundle written by byoc sign`);
  try {
    return { release: JSON.parse(fs.readFileSync(file, 'utf8')), bundle };
  } catch {
    throw new BundleError('bad-release', `${file} is not JSON`);
  }
}

/** Builds the report of an assembly: the model read from its templates, and its HTML and Markdown. */
export function review(assemblyDir: string, options: ReviewOptions = {}): ReviewResult {
  if (!fs.existsSync(assemblyDir) || !fs.statSync(assemblyDir).isDirectory()) throw new BundleError('not-an-assembly', `${assemblyDir} is not a folder: give a synthesized cloud assembly such as cdk.out/customer-plane`);
  const assembly = new Assembly(assemblyDir);
  const model = readModel(assembly);
  let info: ReleaseInfo | undefined;
  if (options.bundle) info = { ...releaseOf(options.bundle, options.publicKey), assemblyImages: assemblyImages(assemblyDir) };
  else if (options.publicKey) throw new BundleError('no-bundle', '--public-key verifies a bundle: give --bundle too');
  const document = buildReport(model, info);
  return { html: toHtml(document), markdown: toMarkdown(document), model, document, release: info?.release };
}

/** Writes `report.html` and `report.md` to `out` (created if needed); returns their paths and the result. */
export function writeReview(assemblyDir: string, out: string, options: ReviewOptions = {}): ReviewResult & { files: { html: string; markdown: string } } {
  const result = review(assemblyDir, options);
  fs.mkdirSync(out, { recursive: true });
  const files = { html: path.join(out, 'report.html'), markdown: path.join(out, 'report.md') };
  fs.writeFileSync(files.html, result.html);
  fs.writeFileSync(files.markdown, result.markdown);
  return { ...result, files };
}
