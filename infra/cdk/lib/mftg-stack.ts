// The deployment: the same resources as infra/sam/template.yaml (tests/infra/check_cdk.py
// compares the two), built with the CDK.
import * as path from "path";
import {
  Aws,
  CfnCondition,
  CfnOutput,
  CfnParameter,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  StackProps,
  Validations,
} from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as events from "aws-cdk-lib/aws-events";
import * as eventsTargets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3n from "aws-cdk-lib/aws-s3-notifications";
import * as sqs from "aws-cdk-lib/aws-sqs";
import * as transfer from "aws-cdk-lib/aws-transfer";
import { Construct } from "constructs";

export interface MftgStackProps extends StackProps {
  /** Where `make package` put the functions (`<dir>/<name>/bootstrap.zip`). */
  lambdaDir: string;
}

/** The seed's lifecycle rules (section 2.2): prefix, days to noncurrent, noncurrent days. */
const EXPIRING: [string, string, number, number][] = [
  ["mftg-files", "AS2/files/", 35, 35],
  ["mftg-raw-message", "AS2/raw-message/", 35, 35],
  ["mftg-raw-mdn", "AS2/raw-mdn/", 35, 35],
  ["mftg-headers", "AS2/headers/", 35, 35],
  ["mftg-tmp", "AS2/tmp/", 1, 1],
];

/** Acknowledges a cdk-nag finding on `scope`, with the reason it is acceptable here. */
function ack(scope: Construct, finding: string, reason: string) {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${finding}`, reason });
}

const LOGS_ONLY = "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]";
const OBJECTS = "IAM5[Resource::arn:<AWS::Partition>:s3:::mftg-<AccountId>/AS2/*]";
const INDEXES = "IAM5[Resource::<MessagesTable05B58A27.Arn>/index/*]";
/** Reading, writing and removing objects, versions included (the trigger's moves, SFTP users). */
const OBJECT_ACTIONS = [
  "s3:GetObject",
  "s3:GetObjectVersion",
  "s3:PutObject",
  "s3:DeleteObject",
  "s3:DeleteObjectVersion",
];
const SECRET =
  "IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:<KeystorePasswordSecretName>-*]";

const WEBHOOK_SECRETS =
  "IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:mftg/webhook/*]";

export class MftgStack extends Stack {
  constructor(scope: Construct, id: string, props: MftgStackProps) {
    super(scope, id, props);

    const accountId = new CfnParameter(this, "AccountId", {
      type: "String",
      allowedPattern: "^[0-9]{12}$",
      description: "The customer account ID; the bucket is mftg-<AccountId>.",
    }).valueAsString;
    const tablePrefix = new CfnParameter(this, "TablePrefix", {
      type: "String",
      default: "mftg",
      allowedPattern: "^[A-Za-z0-9_.-]{1,200}$",
      description: "DynamoDB tables are <TablePrefix>-claims, -messages and -partners.",
    }).valueAsString;
    const secretName = new CfnParameter(this, "KeystorePasswordSecretName", {
      type: "String",
      default: "mftg/keystore-password",
      description:
        "Secrets Manager secret with the password of AS2/keystore/*.jks (create it before deploying).",
    }).valueAsString;
    const duplicateWindow = new CfnParameter(this, "DuplicateWindowSeconds", {
      type: "Number",
      default: 21600,
      minValue: 1,
      description: "Same-name uploads within this many seconds are duplicates (seed, 6 hours).",
    }).valueAsString;
    const maxBody = new CfnParameter(this, "MaxBodyBytes", {
      type: "Number",
      default: 4500000,
      minValue: 1,
      maxValue: 4700000,
      description: "Largest AS2 request as2-receiver takes; Lambda's own limit is 6 MB after base64.",
    }).valueAsString;
    const maxDecompressed = new CfnParameter(this, "MaxDecompressedBytes", {
      type: "Number",
      default: 4294967296,
      minValue: 1,
      description:
        "Largest payload a compressed message may inflate to (refused decompression-failed past it).",
    }).valueAsString;
    const as2Url = new CfnParameter(this, "As2Url", {
      type: "String",
      default: "",
      allowedPattern: "^(https?://[^\\s]+)?$",
      description:
        "Our public AS2 URL when a custom domain fronts as2-receiver; partners are asked to POST asynchronous receipts there. Empty for the receiver's Function URL.",
    }).valueAsString;
    const messageIdDomain = new CfnParameter(this, "MessageIdDomain", {
      type: "String",
      default: "mftg.local",
      allowedPattern: "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
      description: "The part of our Message-IDs after the @, for stations that name none.",
    }).valueAsString;
    const retryAttempts = new CfnParameter(this, "RetryAttempts", {
      type: "Number",
      default: 5,
      minValue: 1,
      maxValue: 100,
      description:
        "Attempts per AS2 send in all, for partnerships without their own retry policy.",
    }).valueAsString;
    const retryInterval = new CfnParameter(this, "RetryIntervalSeconds", {
      type: "Number",
      default: 30,
      minValue: 1,
      maxValue: 86400,
      description: "Wait before a send's second attempt; each further wait doubles.",
    }).valueAsString;
    const retryMaxInterval = new CfnParameter(this, "RetryMaxIntervalSeconds", {
      type: "Number",
      default: 3600,
      minValue: 1,
      maxValue: 86400,
      description: "Longest wait between two attempts (at least RetryIntervalSeconds).",
    }).valueAsString;
    const hasAs2Url = new CfnCondition(this, "HasAs2Url", {
      expression: Fn.conditionNot(Fn.conditionEquals(as2Url, "")),
    });
    const senderConcurrency = new CfnParameter(this, "SenderConcurrency", {
      type: "Number",
      default: 10,
      minValue: 2,
      description: "Most as2-sender executions at once (protects partners' endpoints).",
    }).valueAsNumber;
    const sftpPolicy = new CfnParameter(this, "SftpSecurityPolicy", {
      type: "String",
      default: "TransferSecurityPolicy-2024-01",
      description: "Transfer Family security policy of the SFTP server.",
    }).valueAsString;
    const webhooks = new CfnParameter(this, "Webhooks", {
      type: "String",
      default: "",
      description:
        'Webhooks as a JSON array ([{"name": "ops", "url": "https://...", "secret": "mftg/webhook/ops", "events": ["failed"]}]); each secret is a Secrets Manager secret named mftg/webhook/<name>. Empty for none. Events also go to the account\'s default EventBridge bus (source mftg).',
    }).valueAsString;
    const logLevel = new CfnParameter(this, "LogLevel", {
      type: "String",
      default: "INFO",
      allowedValues: ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"],
    }).valueAsString;

    const bucketName = `mftg-${accountId}`;
    const bucketArn = `arn:${this.partition}:s3:::${bucketName}`;

    // The account bucket.
    const bucket = new s3.Bucket(this, "AccountBucket", {
      bucketName,
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        ...EXPIRING.map(([ruleId, prefix, days, noncurrent]) => ({
          id: ruleId,
          prefix,
          expiration: Duration.days(days),
          noncurrentVersionExpiration: Duration.days(noncurrent),
        })),
        { id: "mftg-expired-delete-markers", prefix: "AS2/", expiredObjectDeleteMarker: true },
        { id: "mftg-incomplete-uploads", abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });

    ack(
      bucket,
      "S1",
      "Server access logs would need a second bucket per account; CloudTrail data events are the audit trail, and every message is in the message log.",
    );

    // Tables.
    const pk = { name: "pk", type: dynamodb.AttributeType.STRING };
    const pitr = { pointInTimeRecoveryEnabled: true };
    const claims = new dynamodb.Table(this, "ClaimsTable", {
      tableName: `${tablePrefix}-claims`,
      partitionKey: pk,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: "expires_at",
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: pitr,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const messages = new dynamodb.Table(this, "MessagesTable", {
      tableName: `${tablePrefix}-messages`,
      partitionKey: pk,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: pitr,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const [indexName, partition] of [
      ["by_pair", "sp"],
      ["by_station", "station"],
      ["by_time", "kind"],
    ]) {
      messages.addGlobalSecondaryIndex({
        indexName,
        partitionKey: { name: partition, type: dynamodb.AttributeType.STRING },
        sortKey: { name: "id", type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    const partners = new dynamodb.Table(this, "PartnersTable", {
      tableName: `${tablePrefix}-partners`,
      partitionKey: pk,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: pitr,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // The send queue, its dead-letter queue, and an alarm on the latter.
    const dlq = new sqs.Queue(this, "SendDeadLetterQueue", {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    const queue = new sqs.Queue(this, "SendQueue", {
      // Six times the sender's timeout, as Lambda recommends for SQS event sources.
      visibilityTimeout: Duration.seconds(1800),
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
    });
    new cloudwatch.Alarm(this, "DeadLetterAlarm", {
      alarmDescription:
        "AS2 sends that failed for good, or jobs that kept failing, wait in the dead-letter queue.",
      metric: dlq.metricApproximateNumberOfMessagesVisible({
        statistic: "Maximum",
        period: Duration.minutes(5),
      }),
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // The functions.
    const environment = {
      MFTG_BUCKET: bucketName,
      MFTG_TABLE_PREFIX: tablePrefix,
      MFTG_QUEUE_URL: queue.queueUrl,
      MFTG_DLQ_URL: dlq.queueUrl,
      MFTG_IDENTITY_PASSWORD_SECRET: secretName,
      MFTG_DUPLICATE_WINDOW_SECONDS: duplicateWindow,
      MFTG_MAX_BODY_BYTES: maxBody,
      MFTG_MAX_DECOMPRESSED_BYTES: maxDecompressed,
      MFTG_MESSAGE_ID_DOMAIN: messageIdDomain,
      MFTG_RETRY_ATTEMPTS: retryAttempts,
      MFTG_RETRY_INTERVAL_SECONDS: retryInterval,
      MFTG_RETRY_MAX_INTERVAL_SECONDS: retryMaxInterval,
      MFTG_WEBHOOKS: webhooks,
    };
    const fn = (
      id: string,
      name: string,
      description: string,
      memorySize: number,
      timeout: number,
      statements: iam.PolicyStatement[],
      wildcards: [string, string][],
      extra: Partial<lambda.FunctionProps> = {},
    ): lambda.Function => {
      const f = new lambda.Function(this, id, {
        functionName: `${tablePrefix}-${name}`,
        description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: "bootstrap",
        code: lambda.Code.fromAsset(path.join(props.lambdaDir, name, "bootstrap.zip")),
        memorySize,
        timeout: Duration.seconds(timeout),
        loggingFormat: lambda.LoggingFormat.JSON,
        applicationLogLevelV2: logLevel as lambda.ApplicationLogLevel,
        systemLogLevelV2: lambda.SystemLogLevel.WARN,
        environment,
        ...extra,
      });
      for (const s of statements) {
        f.addToRolePolicy(s);
      }
      ack(f, LOGS_ONLY, "AWSLambdaBasicExecutionRole only lets the function write its own logs.");
      for (const [finding, reason] of wildcards) {
        ack(f, finding, reason);
      }
      return f;
    };
    const allow = (actions: string[], resources: string[]) =>
      new iam.PolicyStatement({ actions, resources });
    const objects = `${bucketArn}/AS2/*`;
    const tables = (...t: dynamodb.Table[]) =>
      allow(
        // What gateway-aws's dynamo module calls (a transaction of puts needs PutItem).
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
        t.flatMap((x) => (x === messages ? [x.tableArn, `${x.tableArn}/index/*`] : [x.tableArn])),
      );
    const secret = allow(
      ["secretsmanager:GetSecretValue"],
      [
        `arn:${this.partition}:secretsmanager:${this.region}:${this.account}:secret:${secretName}-*`,
      ],
    );

    // Events go to the account's default bus only.
    const putEvents = allow(
      ["events:PutEvents"],
      [`arn:${this.partition}:events:${this.region}:${this.account}:event-bus/default`],
    );
    const webhookSecrets = allow(
      ["secretsmanager:GetSecretValue"],
      [`arn:${this.partition}:secretsmanager:${this.region}:${this.account}:secret:mftg/webhook/*`],
    );

    const sendTrigger = fn(
      "SendTriggerFunction",
      "send-trigger",
      "S3 uploads under AS2/send/ -> duplicate check, outbox, send job",
      256,
      60,
      [
        allow(
          OBJECT_ACTIONS,
          [objects],
        ),
        allow(["s3:ListBucket"], [bucketArn]),
        tables(claims, messages, partners),
        allow(["sqs:SendMessage"], [queue.queueArn]),
        putEvents,
      ],
      [[OBJECTS, "Objects are per message under AS2/ in the account bucket; their names are not known in advance."], [INDEXES, "The message log is queried through its three indexes (by pair, station, time)."]],
    );
    for (const event of [
      s3.EventType.OBJECT_CREATED_PUT,
      s3.EventType.OBJECT_CREATED_POST,
      s3.EventType.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD,
    ]) {
      bucket.addEventNotification(event, new s3n.LambdaDestination(sendTrigger), {
        prefix: "AS2/send/",
      });
    }

    const sender = fn(
      "As2SenderFunction",
      "as2-sender",
      "Send jobs -> AS2 messages, receipts, retries; failed sends parked in the DLQ",
      1024,
      300,
      [
        allow(["s3:GetObject", "s3:PutObject"], [objects]),
        allow(["s3:ListBucket"], [bucketArn]),
        tables(messages, partners),
        allow(["sqs:SendMessage"], [queue.queueArn, dlq.queueArn]),
        secret,
        webhookSecrets,
        putEvents,
        // The daily certificate check reads every station and partnership.
        allow(["dynamodb:Scan"], [partners.tableArn]),
      ],
      [[OBJECTS, "Objects are per message under AS2/ in the account bucket; their names are not known in advance."], [INDEXES, "The message log is queried through its three indexes (by pair, station, time)."], [SECRET, "Secrets Manager appends a random suffix to the secret's ARN."], [WEBHOOK_SECRETS, "Webhook secrets are named mftg/webhook/<name> by the operator, who adds webhooks after deploying."]],
      { reservedConcurrentExecutions: senderConcurrency },
    );
    sender.addEventSource(
      new SqsEventSource(queue, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(1),
        reportBatchItemFailures: true,
      }),
    );
    new events.Rule(this, "CertificateCheck", {
      description: "Daily check of station and partner certificates (certificate-expiring events)",
      schedule: events.Schedule.rate(Duration.days(1)),
      targets: [new eventsTargets.LambdaFunction(sender)],
    });

    const receiver = fn(
      "As2ReceiverFunction",
      "as2-receiver",
      "AS2 messages and receipts over HTTPS (Function URL)",
      1024,
      60,
      [
        allow(["s3:GetObject", "s3:PutObject"], [objects]),
        allow(["s3:ListBucket"], [bucketArn]),
        tables(messages, partners),
        allow(["sqs:SendMessage"], [queue.queueArn]),
        secret,
        putEvents,
      ],
      [[OBJECTS, "Objects are per message under AS2/ in the account bucket; their names are not known in advance."], [INDEXES, "The message log is queried through its three indexes (by pair, station, time)."], [SECRET, "Secrets Manager appends a random suffix to the secret's ARN."]],
    );
    // AS2 partners cannot sign requests with SigV4; AS2 itself authenticates (signatures).
    const url = receiver.addFunctionUrl({
      authType: lambda.FunctionUrlAuthType.NONE,
      invokeMode: lambda.InvokeMode.BUFFERED,
    });
    // Where partners POST asynchronous receipts: the custom domain's URL, or the Function URL.
    const publicUrl = Fn.conditionIf(hasAs2Url.logicalId, as2Url, url.url).toString();
    sender.addEnvironment("MFTG_AS2_URL", publicUrl);

    // SFTP.
    const server = new transfer.CfnServer(this, "SftpServer", {
      domain: "S3",
      endpointType: "PUBLIC",
      identityProviderType: "SERVICE_MANAGED",
      protocols: ["SFTP"],
      securityPolicyName: sftpPolicy,
    });
    const userRole = new iam.Role(this, "SftpUserRole", {
      description: "Assumed by the account's SFTP users; each session policy narrows it further.",
      assumedBy: new iam.ServicePrincipal("transfer.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": this.account } },
      }),
      inlinePolicies: {
        "account-bucket": new iam.PolicyDocument({
          statements: [
            allow(["s3:ListBucket", "s3:GetBucketLocation"], [bucketArn]),
            allow(
              OBJECT_ACTIONS,
              [`${bucketArn}/*`],
            ),
          ],
        }),
      },
    });

    ack(
      userRole,
      "IAM5[Resource::arn:<AWS::Partition>:s3:::mftg-<AccountId>/*]",
      "SFTP users read and write any object of their own account bucket; the session policy keeps them out of AS2/keystore and AS2/tmp.",
    );

    const provisioner = fn(
      "SftpProvisionerFunction",
      "sftp-provisioner",
      "Enables, rotates, describes and disables SFTP users (key-based only)",
      256,
      30,
      [
        allow(["transfer:DescribeServer"], [server.attrArn]),
        allow(
          [
            "transfer:CreateUser",
            "transfer:DescribeUser",
            "transfer:DeleteUser",
            "transfer:ImportSshPublicKey",
            "transfer:DeleteSshPublicKey",
            "transfer:TagResource",
          ],
          [
            `arn:${this.partition}:transfer:${this.region}:${this.account}:user/${server.attrServerId}/*`,
          ],
        ),
        new iam.PolicyStatement({
          actions: ["iam:PassRole"],
          resources: [userRole.roleArn],
          conditions: { StringEquals: { "iam:PassedToService": "transfer.amazonaws.com" } },
        }),
      ],
      [
        [
          "IAM5[Resource::arn:<AWS::Partition>:transfer:<AWS::Region>:<AWS::AccountId>:user/<SftpServer.ServerId>/*]",
          "Users are created and deleted on this one server; their names come with each request.",
        ],
      ],
      {
        environment: {
          ...environment,
          MFTG_SFTP_SERVER_ID: server.attrServerId,
          MFTG_SFTP_USER_ROLE_ARN: userRole.roleArn,
        },
      },
    );

    const installer = fn(
      "LifecycleInstallerFunction",
      "lifecycle-installer",
      "Custom resource putting the seed's lifecycle rules on account buckets made at run time",
      128,
      60,
      [
        allow(
          ["s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"],
          [`arn:${this.partition}:s3:::mftg-*`],
        ),
      ],
      [
        [
          "IAM5[Resource::arn:<AWS::Partition>:s3:::mftg-*]",
          "Installs the rules on account buckets made at run time (every bucket is mftg-<account-id>), and only their lifecycle configuration.",
        ],
      ],
    );
    const handler = this.node.tryFindChild(
      "BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
    );
    if (handler) {
      ack(handler, LOGS_ONLY, "CDK's own handler for S3 notifications; it only writes its logs.");
    }
    Validations.of(this).acknowledge({
      id: "CloudFormation-Validate::W2509",
      reason: "KeystorePasswordSecretName is the name of a secret, not a password.",
    });

    new CfnOutput(this, "BucketName", { value: bucket.bucketName });
    new CfnOutput(this, "As2EndpointUrl", {
      description: "The URL partners send AS2 messages and asynchronous receipts to.",
      value: publicUrl,
    });
    new CfnOutput(this, "As2FunctionUrl", {
      description: "as2-receiver's own Function URL (the origin behind a custom domain).",
      value: url.url,
    });
    new CfnOutput(this, "SendQueueUrl", { value: queue.queueUrl });
    new CfnOutput(this, "DeadLetterQueueUrl", { value: dlq.queueUrl });
    new CfnOutput(this, "SftpServerId", { value: server.attrServerId });
    new CfnOutput(this, "SftpUserRoleArn", { value: userRole.roleArn });
    new CfnOutput(this, "SftpProvisionerFunctionName", { value: provisioner.functionName });
    new CfnOutput(this, "LifecycleInstallerArn", {
      description: "ServiceToken for Custom::MftgLifecycle resources (property BucketName).",
      value: installer.functionArn,
      exportName: `${Aws.STACK_NAME}-LifecycleInstallerArn`,
    });
  }
}
