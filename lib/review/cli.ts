import { Command } from 'commander';
import { plural } from './document';
import { writeReview } from './index';

/**
 * `byoc review ASSEMBLY --out DIR [--bundle BUNDLE [--public-key KEY]]`: the security reviewer's report of a
 * synthesized assembly, `report.html` (self-contained) and `report.md`, read from its templates alone.
 */
export function registerReviewCommand(cli: Command): void {
  cli.command('review')
    .description('write the security reviewer\'s report of a synthesized assembly: DIR/report.html (self-contained, works offline) and DIR/report.md, read from its templates (root and nested), the boundary contract and the validation results')
    .argument('<assembly>', 'synthesized cloud assembly, e.g. cdk.out/customer-plane (or a bundle folder)')
    .requiredOption('--out <dir>', 'folder to write report.html and report.md to')
    .option('--bundle <bundle>', 'signed bundle of this release: the report adds its version, signer fingerprint, image digests and contract hash')
    .option('--public-key <file>', 'verify --bundle against this public key first (signature, every file, expiry)')
    .action((assembly: string, opts: { out: string; bundle?: string; publicKey?: string }) => {
      const r = writeReview(assembly, opts.out, { bundle: opts.bundle, publicKey: opts.publicKey });
      const m = r.model;
      const db = r.document.sections[0].blocks.find((b) => 'question' in b && b.question.id === 'q-database');
      const dbAnswer = db && 'question' in db ? (Array.isArray(db.question.answer) ? db.question.answer : [db.question.answer]).map((x) => (typeof x === 'string' ? x : Object.values(x)[0])).join('') : '';
      console.log(`wrote ${r.files.html} and ${r.files.markdown}: review of ${assembly} (${plural(m.assembly.templates.length, 'template')}, ${plural(m.roles.length, 'IAM role')}, ${plural(m.rules.length, 'security-group rule')}, ${plural(m.workloads.length, 'workload')}, ${plural(m.acknowledgements.length, 'acknowledged finding')}${r.release ? `, release ${r.release.version}` : ''}); vendor reaches the database: ${dbAnswer.split('.')[0]}`);
    });
}
