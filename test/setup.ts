// CDK's built-in CloudFormation validation costs seconds per synth; `npm run synth` keeps it on, and
// the tests lint every template with cfn-lint instead. The cdk-nag packs still run on every synth.
process.env.CDK_VALIDATION = 'false';
