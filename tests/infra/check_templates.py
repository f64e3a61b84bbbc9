"""Checks the deployment templates offline: aws-sam-translator turns the SAM template into
CloudFormation and `cdk synth` the CDK app (with cdk-nag's AwsSolutions checks), cfn-lint finds
nothing in any of them, the facts the deployment depends on hold in both, each check is shown to
notice a breakage, and SAM and CDK describe the same resources.

    python tests/infra/check_templates.py [OUT_DIR]   # writes OUT_DIR/sam.json, OUT_DIR/cdk.out

Exits non-zero with every failed check listed.
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import zipfile

from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "sam" / "template.yaml"
EXAMPLE = ROOT / "infra" / "examples" / "existing-bucket-lifecycle.yaml"



def gateway_layout():
    """The storage layout as the gateway defines it (gateway::layout), from `mftg layout --json`:
    the templates are compared with the code, not with a copy of it."""
    r = subprocess.run(["cargo", "run", "--quiet", "-p", "mftg-cli", "--no-default-features", "--", "layout", "--json"],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"mftg layout --json failed:\n{r.stderr}")
    return json.loads(r.stdout)


LAYOUT = gateway_layout()
# The seed's lifecycle rules (section 2.2): prefix -> (days to noncurrent, noncurrent days).
LIFECYCLE = {r["root"]: (r["expires"]["current_days"], r["expires"]["noncurrent_days"])
             for r in LAYOUT["roots"] if r["expires"]}
NEVER_EXPIRE = tuple(LAYOUT["kept"])
ROOT_PREFIX = LAYOUT["root"]
TMP = next(r["root"] for r in LAYOUT["roots"] if r["root"].endswith("/tmp/"))
SEND = LAYOUT["roots"][0]["root"]
DATA_SERVICES = ("s3:", "dynamodb:", "sqs:", "secretsmanager:", "transfer:")
# Deployment-wide defaults for stations and partnerships that set none: variable -> parameter.
DEFAULTS = {
    "MFTG_MESSAGE_ID_DOMAIN": "MessageIdDomain",
    "MFTG_RETRY_ATTEMPTS": "RetryAttempts",
    "MFTG_RETRY_INTERVAL_SECONDS": "RetryIntervalSeconds",
    "MFTG_RETRY_MAX_INTERVAL_SECONDS": "RetryMaxIntervalSeconds",
}


class NoManagedPolicies:
    """The template names no managed policies, so nothing needs IAM to look them up."""

    def load(self):
        return {}


def plain(value):
    """cfn-lint's YAML nodes as plain dicts, lists and strings."""
    return json.loads(json.dumps(value, default=str))


def translate():
    sam = plain(cfn_yaml.load(str(TEMPLATE)))
    # What `sam package` does: local code directories become uploaded artifacts.
    for name, r in sam["Resources"].items():
        uri = r.get("Properties", {}).get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            if not (uri.startswith("../../target/lambda/") and uri.endswith("/bootstrap.zip")):
                raise SystemExit(f"{name}: CodeUri {uri} is not what `make package` writes")
            r["Properties"]["CodeUri"] = f"s3://mftg-artifacts/{pathlib.PurePath(uri).parent.name}.zip"
    # Offline: the pseudo parameters come from here, not from a session with AWS.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    return sam, transform(sam, {}, NoManagedPolicies())


def resources(cfn, kind):
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def statements(policy_document):
    s = policy_document.get("Statement", [])
    return s if isinstance(s, list) else [s]


def listify(v):
    return v if isinstance(v, list) else [v]


def mentions(value, text):
    return text in json.dumps(value)


def normal_sub(value):
    """An ARN as one `Fn::Sub` string, whether written with `!Sub` (SAM) or joined from pseudo
    parameters (CDK's `Fn::Join`), so the two can be compared."""
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        text = sep.join(p if isinstance(p, str) else "${" + p["Ref"] + "}" if "Ref" in p else json.dumps(p) for p in parts)
        return {"Fn::Sub": text}
    return value


def points_at(value, logical_id):
    return value in ({"Ref": logical_id}, {"Fn::GetAtt": [logical_id, "Arn"]})


FUNCTIONS = ("send-trigger", "as2-sender", "as2-receiver", "sftp-provisioner", "lifecycle-installer")
# What an SQS event source or the CDK's own notification handler adds to roles.
PLUMBING = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl", "s3:PutBucketNotification"}


def our_functions(cfn):
    """Function name (send-trigger, ...) -> (logical ID, resource)."""
    out = {}
    for lid, f in resources(cfn, "AWS::Lambda::Function").items():
        for name in FUNCTIONS:
            if mentions(f["Properties"].get("FunctionName"), f"-{name}"):
                out[name] = (lid, f)
    return out


def role_statements(cfn, role_id):
    """Every Allow statement of a role: inline (SAM) and attached AWS::IAM::Policy (CDK)."""
    role = cfn["Resources"][role_id]["Properties"]
    docs = [p["PolicyDocument"] for p in role.get("Policies", [])]
    docs += [p["Properties"]["PolicyDocument"] for p in resources(cfn, "AWS::IAM::Policy").values()
             if {"Ref": role_id} in p["Properties"].get("Roles", [])]
    return [s for d in docs for s in statements(d) if s.get("Effect") == "Allow"]


def function_actions(cfn, name):
    lid, f = our_functions(cfn)[name]
    role = f["Properties"]["Role"]["Fn::GetAtt"][0]
    return sorted({a for s in role_statements(cfn, role) for a in listify(s.get("Action", []))} - PLUMBING)


def bucket_notifications(cfn, bucket):
    """Lambda notifications as (event, filter rules, target): from the bucket's own
    configuration (SAM) or from CDK's notification custom resource (the S3 API's shape)."""
    out = []
    for n in bucket.get("NotificationConfiguration", {}).get("LambdaConfigurations", []):
        rules = n.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        out.append({"Event": n["Event"], "rules": [(r["Name"].lower(), r["Value"]) for r in rules], "target": n.get("Function")})
    for custom in resources(cfn, "Custom::S3BucketNotifications").values():
        for n in custom["Properties"].get("NotificationConfiguration", {}).get("LambdaFunctionConfigurations", []):
            rules = n.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            for e in n.get("Events", []):
                out.append({"Event": e, "rules": [(r["Name"].lower(), r["Value"]) for r in rules], "target": n.get("LambdaFunctionArn")})
    return out


def check(cfn, fail):
    buckets = resources(cfn, "AWS::S3::Bucket")
    if len(buckets) != 1:
        fail(f"one bucket expected, found {list(buckets)}")
        return
    bucket_id, bucket = next(iter(buckets.items()))
    bucket = bucket["Properties"]
    if not (mentions(bucket.get("BucketName"), "mftg-") and mentions(bucket.get("BucketName"), "AccountId")):
        fail(f"bucket name: {bucket.get('BucketName')}")
    if bucket.get("VersioningConfiguration", {}).get("Status") != "Enabled":
        fail("bucket versioning is not enabled")
    if not bucket.get("BucketEncryption"):
        fail("bucket encryption is not set")
    pab = bucket.get("PublicAccessBlockConfiguration", {})
    if not all(pab.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")):
        fail(f"public access not blocked: {pab}")

    # Lifecycle: exactly the seed's rules with their day counts; nothing else expires.
    rules = [r for r in bucket.get("LifecycleConfiguration", {}).get("Rules", []) if r.get("Status") == "Enabled"]
    expiring = {r.get("Prefix", ""): (r.get("ExpirationInDays"), r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"))
                for r in rules if "ExpirationInDays" in r}
    if expiring != LIFECYCLE:
        fail(f"lifecycle rules: {expiring} != {LIFECYCLE}")
    for kept in NEVER_EXPIRE:
        for r in rules:
            if kept.startswith(r.get("Prefix", "")) and ("ExpirationInDays" in r or "NoncurrentVersionExpiration" in r):
                fail(f"{kept} would expire under rule {r.get('Id')}")
    if not any(r.get("ExpiredObjectDeleteMarker") is True and r.get("Prefix") == ROOT_PREFIX for r in rules):
        fail(f"expired delete markers under {ROOT_PREFIX} are not removed")
    days = LAYOUT["incomplete_upload_days"]
    if not any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == days and r.get("Prefix", "") == ""
               for r in rules):
        fail(f"incomplete multipart uploads are not aborted bucket-wide after {days} days")
    window = cfn.get("Parameters", {}).get("DuplicateWindowSeconds", {}).get("Default")
    if str(window) != str(LAYOUT["duplicate_window_seconds"]):
        fail(f"DuplicateWindowSeconds defaults to {window}, the gateway to {LAYOUT['duplicate_window_seconds']}")

    # TLS-only bucket policy.
    tls = [s for p in resources(cfn, "AWS::S3::BucketPolicy").values() for s in statements(p["Properties"]["PolicyDocument"])
           if s.get("Effect") == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    if not tls:
        fail("no TLS-only bucket policy")

    functions = our_functions(cfn)
    missing = [n for n in FUNCTIONS if n not in functions]
    if missing:
        fail(f"functions missing: {missing}")
        return
    ids = {name: lid for name, (lid, _) in functions.items()}

    # Notifications: Put, Post, CompleteMultipartUpload under AS2/send/ to send-trigger; never Copy.
    notes = bucket_notifications(cfn, bucket)
    events = sorted(n["Event"] for n in notes)
    if events != ["s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectCreated:Post", "s3:ObjectCreated:Put"]:
        fail(f"notification events: {events}")
    for n in notes:
        if n["rules"] != [("prefix", SEND)]:
            fail(f"notification filter: {n['rules']}")
        if not points_at(n["target"], ids["send-trigger"]):
            fail(f"notification target: {n['target']}")

    # Tables: TTL on the claims, the message indexes.
    tables = {name: t["Properties"] for t in resources(cfn, "AWS::DynamoDB::Table").values()
              for name in ("claims", "messages", "partners") if mentions(t["Properties"].get("TableName"), f"-{name}")}
    if tables.get("claims", {}).get("TimeToLiveSpecification") != {"AttributeName": "expires_at", "Enabled": True}:
        fail(f"claims TTL: {tables.get('claims', {}).get('TimeToLiveSpecification')}")
    indexes = sorted(i["IndexName"] for i in tables.get("messages", {}).get("GlobalSecondaryIndexes", []))
    if indexes != ["by_pair", "by_station", "by_time"]:
        fail(f"message indexes: {indexes}")

    # Queue with a dead-letter queue and an alarm on it.
    redriven = [q["Properties"] for q in resources(cfn, "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"]]
    if len(redriven) != 1:
        fail("the send queue has no dead-letter queue")
        return
    dlq_id = redriven[0]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    alarms = [a["Properties"] for a in resources(cfn, "AWS::CloudWatch::Alarm").values()]
    if not any(d.get("Value") == {"Fn::GetAtt": [dlq_id, "QueueName"]} for a in alarms for d in a.get("Dimensions", [])):
        fail("no alarm on the dead-letter queue")

    # Functions: provided.al2023, arm64, JSON logs; the sender's batch failures.
    for name, (lid, f) in functions.items():
        p = f["Properties"]
        if (p.get("Runtime"), p.get("Architectures"), p.get("Handler")) != ("provided.al2023", ["arm64"], "bootstrap"):
            fail(f"{name}: runtime {p.get('Runtime')} {p.get('Architectures')} {p.get('Handler')}")
        if p.get("LoggingConfig", {}).get("LogFormat") != "JSON":
            fail(f"{name}: logs are not JSON")
    mappings = [m["Properties"] for m in resources(cfn, "AWS::Lambda::EventSourceMapping").values()]
    if not any(points_at(m.get("FunctionName"), ids["as2-sender"]) and m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in mappings):
        fail("as2-sender does not report batch item failures")
    if functions["as2-sender"][1]["Properties"].get("ReservedConcurrentExecutions") is None:
        fail("as2-sender has no reserved concurrency")
    urls = [u["Properties"] for u in resources(cfn, "AWS::Lambda::Url").values()]
    if len(urls) != 1 or not points_at(urls[0]["TargetFunctionArn"], ids["as2-receiver"]):
        fail(f"function URLs: {urls}")
    if "As2EndpointUrl" not in cfn.get("Outputs", {}):
        fail("no output with the AS2 endpoint URL")

    # Deployment-wide defaults reach the gateway's functions; the sender asks partners for
    # asynchronous receipts at the public URL: the As2Url parameter when set, else the Function URL.
    def env(name):
        return functions[name][1]["Properties"].get("Environment", {}).get("Variables", {})
    for name in ("send-trigger", "as2-sender", "as2-receiver"):
        for var, param in DEFAULTS.items():
            if env(name).get(var) != {"Ref": param}:
                fail(f"{name}: {var} is {env(name).get(var)}, not parameter {param}")
    url_ids = list(resources(cfn, "AWS::Lambda::Url"))
    public = env("as2-sender").get("MFTG_AS2_URL")
    branches = public.get("Fn::If", []) if isinstance(public, dict) else []
    if len(url_ids) != 1 or branches[1:] != [{"Ref": "As2Url"}, {"Fn::GetAtt": [url_ids[0], "FunctionUrl"]}]:
        fail(f"as2-sender: MFTG_AS2_URL is {public}, not As2Url or else the Function URL")
    elif cfn.get("Conditions", {}).get(branches[0]) != {"Fn::Not": [{"Fn::Equals": [{"Ref": "As2Url"}, ""]}]}:
        fail(f"condition {branches[0]} is not 'As2Url is set'")

    # Events: the gateway's functions put events on the account's default bus and nowhere else;
    # they are told the webhooks, and the sender (which posts them) may read their secrets only.
    default_bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
    webhook_secrets = {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:mftg/webhook/*"}
    for name, (lid, f) in functions.items():
        role = f["Properties"]["Role"]["Fn::GetAtt"][0]
        grants = [s for s in role_statements(cfn, role) if any(a.startswith("events:") for a in listify(s.get("Action", [])))]
        gateway = name in ("send-trigger", "as2-sender", "as2-receiver")
        targets = [normal_sub(r) for s in grants for r in listify(s.get("Resource"))]
        actions = sorted({a for s in grants for a in listify(s.get("Action", []))})
        if gateway and (actions != ["events:PutEvents"] or targets != [default_bus]):
            fail(f"{name}: events {actions} on {targets}, not events:PutEvents on the default bus")
        if not gateway and grants:
            fail(f"{name}: may use EventBridge ({actions})")
        if gateway and env(name).get("MFTG_WEBHOOKS") != {"Ref": "Webhooks"}:
            fail(f"{name}: MFTG_WEBHOOKS is {env(name).get('MFTG_WEBHOOKS')}, not parameter Webhooks")
        reads = [normal_sub(r) for s in role_statements(cfn, role) if "secretsmanager:GetSecretValue" in listify(s.get("Action", []))
                 for r in listify(s.get("Resource"))]
        if (webhook_secrets in reads) != (name == "as2-sender"):
            fail(f"{name}: reads webhook secrets: {webhook_secrets in reads}")

    # The daily certificate check: a schedule invokes as2-sender once a day.
    schedules = [r["Properties"] for r in resources(cfn, "AWS::Events::Rule").values()
                 if r["Properties"].get("ScheduleExpression") == "rate(1 day)"
                 and any(points_at(t.get("Arn"), ids["as2-sender"]) for t in r["Properties"].get("Targets", []))]
    if len(schedules) != 1:
        fail(f"no daily schedule invokes as2-sender: {list(resources(cfn, 'AWS::Events::Rule'))}")
    if "dynamodb:Scan" not in function_actions(cfn, "as2-sender"):
        fail("as2-sender cannot list the partnerships for the certificate check")

    # Least privilege: no wildcard actions on data services anywhere; our roles name resources.
    ours = {f["Properties"]["Role"]["Fn::GetAtt"][0] for _, f in functions.values()}
    ours |= {lid for lid, r in resources(cfn, "AWS::IAM::Role").items() if mentions(r["Properties"].get("AssumeRolePolicyDocument"), "transfer.amazonaws.com")}
    for role_id in resources(cfn, "AWS::IAM::Role"):
        for s in role_statements(cfn, role_id):
            actions = listify(s.get("Action", []))
            for a in actions:
                if a == "*" or (a.startswith(DATA_SERVICES) and a.endswith("*")):
                    fail(f"{role_id}: wildcard action {a}")
            if role_id in ours and any(a.startswith(DATA_SERVICES) for a in actions) and "*" in listify(s.get("Resource")):
                fail(f"{role_id}: {actions} on every resource")

    # Transfer Family: service-managed identities, SFTP only, a named security policy.
    servers = [s["Properties"] for s in resources(cfn, "AWS::Transfer::Server").values()]
    if len(servers) != 1 or servers[0].get("IdentityProviderType") != "SERVICE_MANAGED" or servers[0].get("Protocols") != ["SFTP"]:
        fail(f"SFTP server: {servers}")
    if not servers or not servers[0].get("SecurityPolicyName"):
        fail("the SFTP server has no security policy")


def summary(cfn):
    """What SAM and CDK must agree on, free of logical IDs and of how each tool spells things."""
    extras = {"AWS::CDK::Metadata", "Custom::S3BucketNotifications", "AWS::IAM::Policy"}
    functions = our_functions(cfn)
    ours = {lid for lid, _ in functions.values()}
    types = sorted({r["Type"] for lid, r in cfn["Resources"].items()
                    if r["Type"] not in extras and not (r["Type"] == "AWS::Lambda::Function" and lid not in ours)})
    bucket = next(iter(resources(cfn, "AWS::S3::Bucket").values()))["Properties"]
    rules = sorted(json.dumps([r.get("Id"), r.get("Prefix", ""), r.get("ExpirationInDays"), r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"),
                    r.get("ExpiredObjectDeleteMarker", False), r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation")])
                   for r in bucket["LifecycleConfiguration"]["Rules"])
    fns = {}
    for name, (_, f) in functions.items():
        p = f["Properties"]
        fns[name] = {
            "memory": p.get("MemorySize"), "timeout": p.get("Timeout"), "runtime": p.get("Runtime"),
            "arch": p.get("Architectures"), "reserved": p.get("ReservedConcurrentExecutions"),
            "logs": p.get("LoggingConfig", {}).get("LogFormat"),
            "env": sorted(p.get("Environment", {}).get("Variables", {})),
            "actions": function_actions(cfn, name),
        }
    tables = {}
    for t in resources(cfn, "AWS::DynamoDB::Table").values():
        p = t["Properties"]
        name = next(n for n in ("claims", "messages", "partners") if mentions(p.get("TableName"), f"-{n}"))
        tables[name] = {
            "keys": p.get("KeySchema"), "billing": p.get("BillingMode"), "ttl": p.get("TimeToLiveSpecification"),
            "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in p.get("AttributeDefinitions", [])),
            "indexes": sorted((i["IndexName"], json.dumps(i["KeySchema"]), i["Projection"]["ProjectionType"]) for i in p.get("GlobalSecondaryIndexes", [])),
            "pitr": p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"),
        }
    queues = sorted(json.dumps([q["Properties"].get("VisibilityTimeout"), q["Properties"].get("MessageRetentionPeriod"),
                                int(q["Properties"].get("RedrivePolicy", {}).get("maxReceiveCount", 0)),
                                q["Properties"].get("SqsManagedSseEnabled")])
                    for q in resources(cfn, "AWS::SQS::Queue").values())
    server = next(iter(resources(cfn, "AWS::Transfer::Server").values()))["Properties"]
    return {
        "types": types, "lifecycle": rules, "functions": fns, "tables": tables, "queues": queues,
        "notifications": sorted(n["Event"] for n in bucket_notifications(cfn, bucket)),
        "sftp": {k: server.get(k) for k in ("Domain", "EndpointType", "IdentityProviderType", "Protocols")},
        "parameters": {k: {a: str(v.get(a)) for a in ("Type", "Default", "MinValue", "MaxValue", "AllowedPattern", "AllowedValues")}
                       for k, v in cfn.get("Parameters", {}).items() if k != "BootstrapVersion"},
        "conditions": {k: v for k, v in cfn.get("Conditions", {}).items() if k != "CDKMetadataAvailable"},
        "outputs": sorted(cfn.get("Outputs", {}).keys()),
    }


def mutations():
    """Breakages each of which the checks must notice (so they are known to be able to fail)."""
    def bucket(c):
        return next(v for v in c["Resources"].values() if v["Type"] == "AWS::S3::Bucket")["Properties"]

    def copy_event(c):
        b = bucket(c)
        if "NotificationConfiguration" in b:
            n = b["NotificationConfiguration"]["LambdaConfigurations"]
            n.append(dict(n[0], Event="s3:ObjectCreated:Copy"))
            return
        custom = next(v for v in c["Resources"].values() if v["Type"] == "Custom::S3BucketNotifications")
        n = custom["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
        n.append(dict(n[0], Events=["s3:ObjectCreated:Copy"]))

    def tmp_days(c):
        for r in bucket(c)["LifecycleConfiguration"]["Rules"]:
            if r.get("Prefix") == TMP:
                r["ExpirationInDays"] = 2

    def send_expires(c):
        bucket(c)["LifecycleConfiguration"]["Rules"].append(
            {"Id": "x", "Status": "Enabled", "Prefix": SEND, "ExpirationInDays": 30})

    def wildcard(c):
        role = next(v for v in c["Resources"].values() if v["Type"] == "AWS::IAM::Role")
        role["Properties"].setdefault("Policies", []).append(
            {"PolicyName": "x", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:x"}]}})

    def no_ttl(c):
        for t in c["Resources"].values():
            if t["Type"] == "AWS::DynamoDB::Table" and mentions(t["Properties"].get("TableName"), "-claims"):
                t["Properties"].pop("TimeToLiveSpecification")

    def x86(c):
        our_functions(c)["as2-sender"][1]["Properties"]["Architectures"] = ["x86_64"]

    def no_retry_default(c):
        our_functions(c)["as2-sender"][1]["Properties"]["Environment"]["Variables"].pop("MFTG_RETRY_ATTEMPTS")

    def function_url_only(c):
        env = our_functions(c)["as2-sender"][1]["Properties"]["Environment"]["Variables"]
        env["MFTG_AS2_URL"] = env["MFTG_AS2_URL"]["Fn::If"][2]

    def any_bus(c):
        role = our_functions(c)["as2-receiver"][1]["Properties"]["Role"]["Fn::GetAtt"][0]
        for st in role_statements(c, role):
            if "events:PutEvents" in listify(st.get("Action", [])):
                st["Resource"] = "*"

    def passwords(c):
        next(v for v in c["Resources"].values() if v["Type"] == "AWS::Transfer::Server")["Properties"]["IdentityProviderType"] = "API_GATEWAY"

    return {
        "Copy notification": copy_event,
        "AS2/tmp/ kept 2 days": tmp_days,
        "AS2/send/ expiring": send_expires,
        "no versioning": lambda c: bucket(c).pop("VersioningConfiguration"),
        "no TTL": no_ttl,
        "dynamodb:* allowed": wildcard,
        "x86_64": x86,
        "password identities": passwords,
        "sender without the retry default": no_retry_default,
        "custom AS2 URL ignored": function_url_only,
        "events on every bus": any_bus,
        "no certificate check": lambda c: [c["Resources"].pop(k) for k, v in list(c["Resources"].items()) if v["Type"] == "AWS::Events::Rule"],
        "a 1-hour duplicate window by default": lambda c: c["Parameters"]["DuplicateWindowSeconds"].update(Default=3600),
    }


def synth_cdk(out):
    """`cdk synth` offline, without AWS credentials. The functions' code is what `make package`
    wrote to `target/lambda` when it is there, else a stand-in (synthesis only hashes it)."""
    cdk = ROOT / "infra" / "cdk"
    code = ROOT / "target" / "lambda"
    if not all((code / n / "bootstrap.zip").exists() for n in FUNCTIONS):
        code = out / "lambda-standin"
        for n in FUNCTIONS:
            (code / n).mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(code / n / "bootstrap.zip", "w") as z:
                z.writestr("bootstrap", "stand-in for synthesis; `make package` builds the real one\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CDK_DISABLE_VERSION_CHECK="1", CDK_DISABLE_CLI_TELEMETRY="true", CI="true")
    npx = str(cdk / "node_modules" / ".bin")
    for cmd in ([f"{npx}/tsc"], [f"{npx}/cdk", "synth", "--quiet", "--no-notices", "-c", f"lambdaDir={code}", "-o", str(out / "cdk.out")]):
        r = subprocess.run(cmd, cwd=cdk, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:2])} failed:\n{r.stdout}{r.stderr}")
    template = json.loads((out / "cdk.out" / "Mftg.template.json").read_text())
    report = json.loads((out / "cdk.out" / "validation-report.json").read_text())
    return template, report


def check_nag(report, fail):
    """cdk-nag's AwsSolutions checks: no open findings, and a reason for each acknowledged one."""
    plugins = report.get("pluginReports", [])
    if not any(p.get("pluginName") == "AwsSolutions" for p in plugins):
        fail("cdk-nag's AwsSolutions checks did not run")
    for p in plugins:
        if p.get("violations"):
            fail(f"{p['pluginName']}: {[v.get('ruleName') for v in p['violations']]}")
        for v in p.get("suppressedViolations", []):
            if len(v.get("reason", "").strip()) < 20:
                fail(f"{v.get('ruleName')} acknowledged without a reason")


def check_example(templates, fail):
    """The example stack's Custom::MftgLifecycle reaches the installer both deployments export,
    with the properties the installer reads (those of the sample event it is tested with)."""
    example = plain(cfn_yaml.load(str(EXAMPLE)))
    sample = json.loads((ROOT / "events" / "lifecycle-installer" / "create.json").read_text())
    customs = [r["Properties"] for r in example["Resources"].values() if r["Type"] == "Custom::MftgLifecycle"]
    if len(customs) != 1:
        fail(f"example: {len(customs)} Custom::MftgLifecycle resources")
        return
    props = customs[0]
    if sorted(props) != sorted(sample["ResourceProperties"]):
        fail(f"example: properties {sorted(props)}, the installer reads {sorted(sample['ResourceProperties'])}")
    if props.get("ServiceToken") != {"Fn::ImportValue": {"Fn::Sub": "${MftgStackName}-LifecycleInstallerArn"}}:
        fail(f"example: ServiceToken {props.get('ServiceToken')}")
    pattern = example["Parameters"]["BucketName"].get("AllowedPattern", "")
    if not re.fullmatch(pattern, sample["ResourceProperties"]["BucketName"]) or re.fullmatch(pattern, "other-bucket"):
        fail(f"example: BucketName pattern {pattern!r} does not admit exactly mftg-* buckets")
    for name, cfn in templates:
        out = cfn.get("Outputs", {}).get("LifecycleInstallerArn", {})
        export = json.dumps(out.get("Export"))
        if "AWS::StackName" not in export or "-LifecycleInstallerArn" not in export:
            fail(f"{name}: LifecycleInstallerArn is not exported as <stack>-LifecycleInstallerArn: {export}")
        installer = our_functions(cfn).get("lifecycle-installer", ("",))[0]
        if not points_at(out.get("Value"), installer):
            fail(f"{name}: LifecycleInstallerArn is {out.get('Value')}")


def lint(target, fail, ignore=()):
    extra = ["--ignore-checks", *ignore] if ignore else []
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "cfn-lint"), *extra, "--", str(target)], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"cfn-lint {target.name}:\n{r.stdout}{r.stderr}")


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "infra"
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    _, sam = translate()
    (out / "sam.json").write_text(json.dumps(sam, indent=1, sort_keys=True))
    cdk, report = synth_cdk(out)
    check_nag(report, lambda f: failures.append(f"cdk-nag: {f}"))
    for name, cfn in (("SAM", sam), ("CDK", cdk)):
        check(cfn, lambda f, n=name: failures.append(f"{n}: {f}"))
        for what, mutate in mutations().items():
            broken = json.loads(json.dumps(cfn))
            mutate(broken)
            found = []
            check(broken, found.append)
            if not found:
                failures.append(f"{name}: the checks do not notice: {what}")
    check_example((("SAM", sam), ("CDK", cdk)), failures.append)
    for target in (TEMPLATE, out / "sam.json", EXAMPLE):
        lint(target, failures.append)
    # W3005: the CDK itself writes DependsOn on a role it also references (harmless, not ours).
    lint(out / "cdk.out" / "Mftg.template.json", failures.append, ignore=("W3005",))
    a, b = summary(sam), summary(cdk)
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            failures.append(f"SAM and CDK differ in {key}:\n  SAM {json.dumps(a.get(key), sort_keys=True)}\n  CDK {json.dumps(b.get(key), sort_keys=True)}")
    if failures:
        print("\n".join(f"FAIL {f}" for f in failures))
        sys.exit(1)
    print(f"check_templates: ok (SAM {len(sam['Resources'])} resources, CDK {len(cdk['Resources'])}; "
          f"{len(mutations())} breakages noticed in each; cdk-nag clean)")


if __name__ == "__main__":
    main()
