#!/usr/bin/env node
// The mftg CDK app: one stack per deployment, checked with cdk-nag's AwsSolutions rules.
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { MftgStack } from "../lib/mftg-stack";

const app = new App();
new MftgStack(app, "Mftg", {
  // The same stack name as `make deploy-sam` uses by default (STACK=mftg).
  stackName: app.node.tryGetContext("stackName") ?? "mftg",
  description:
    "mftg, an AS2 gateway with SFTP integration (same resources as infra/sam/template.yaml)",
  lambdaDir: app.node.tryGetContext("lambdaDir") ?? "../../target/lambda",
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
