//! A deployment as `mftg` names it: the `[aws]` section of a configuration file or a named
//! profile. It says where the deployment's bucket, tables, queues and keystore password are, the
//! same things the Lambdas read from their environment.

use gateway::keystore::KeystorePasswords;
use serde::{Deserialize, Serialize};

use crate::config::Endpoint;
use crate::dynamo::Tables;
use crate::ports::AwsSettings;

/// One deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The CloudFormation stack it was read from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// The region; the default chain's (`AWS_REGION`, `~/.aws/config`) if left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The customer account ID the deployment is for (the template's `AccountId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The account bucket; `mftg-<account_id>` if left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Tables are `<table_prefix>-claims`, `-messages` and `-partners`.
    #[serde(default = "default_prefix")]
    pub table_prefix: String,
    /// The send queue's URL (the stack's `SendQueueUrl`).
    pub queue_url: String,
    /// Its dead-letter queue's URL (`DeadLetterQueueUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_url: Option<String>,
    /// The secret holding the keystores' password (`ssm:/name` for an SSM SecureString).
    pub keystore_password_secret: String,
    /// The receiver's public AS2 URL (`As2EndpointUrl`), for `doctor` and new stations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as2_url: Option<String>,
    /// An endpoint for every AWS API instead of AWS's own (moto, LocalStack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
}

fn default_prefix() -> String {
    crate::dynamo::DEFAULT_TABLE_PREFIX.into()
}

/// The keystore password secret the templates default to (`KeystorePasswordSecretName`).
pub const DEFAULT_KEYSTORE_SECRET: &str = "mftg/keystore-password";

/// A profile that cannot name a deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Neither a bucket nor an account ID to name it by.
    #[error("the profile names no bucket: set bucket, or account_id for mftg-<account_id>")]
    NoBucket,
    /// An account ID that is not twelve digits.
    #[error("account_id {0:?} is not a 12-digit AWS account ID")]
    AccountId(String),
    /// A setting left empty.
    #[error("{0} is empty")]
    Empty(&'static str),
}

impl Profile {
    /// A deployment known by its send queue, with the templates' defaults for the rest.
    pub fn new(queue_url: impl Into<String>) -> Self {
        Profile {
            stack: None,
            region: None,
            account_id: None,
            bucket: None,
            table_prefix: default_prefix(),
            queue_url: queue_url.into(),
            dead_letter_url: None,
            keystore_password_secret: DEFAULT_KEYSTORE_SECRET.into(),
            as2_url: None,
            endpoint_url: None,
        }
    }

    /// The bucket: as named, or `mftg-<account_id>` as the templates name it.
    pub fn bucket(&self) -> Result<String, ProfileError> {
        if let Some(b) = self.bucket.as_deref().filter(|b| !b.trim().is_empty()) {
            return Ok(b.trim().to_string());
        }
        match &self.account_id {
            Some(a) => Ok(format!("mftg-{a}")),
            None => Err(ProfileError::NoBucket),
        }
    }

    /// Checks the profile can name a deployment.
    pub fn check(&self) -> Result<(), ProfileError> {
        if let Some(a) = &self.account_id {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ProfileError::AccountId(a.clone()));
            }
        }
        self.bucket()?;
        for (name, value) in [
            ("table_prefix", &self.table_prefix),
            ("queue_url", &self.queue_url),
            ("keystore_password_secret", &self.keystore_password_secret),
        ] {
            if value.trim().is_empty() {
                return Err(ProfileError::Empty(name));
            }
        }
        Ok(())
    }

    /// Where the deployment's data is, as the Lambdas' environment says it.
    pub fn settings(&self) -> Result<AwsSettings, ProfileError> {
        self.check()?;
        let secret = self.keystore_password_secret.clone();
        Ok(AwsSettings {
            bucket: self.bucket()?,
            tables: Tables::with_prefix(&self.table_prefix),
            queue_url: self.queue_url.clone(),
            dead_letter_url: self.dead_letter_url.clone(),
            keystore_passwords: KeystorePasswords {
                identity: secret.clone(),
                trust: secret.clone(),
                https: secret,
            },
            // The functions publish events; the CLI only queues work for them.
            event_bus: None,
        })
    }

    /// The AWS endpoint and region.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.endpoint_url.clone(),
            region: self.region.clone(),
        }
    }
}

/// What a stack's parameters and outputs say, as a profile (the SAM template and the CDK app
/// name them alike): `BucketName`, `SendQueueUrl`, `DeadLetterQueueUrl`, `As2EndpointUrl`;
/// `AccountId`, `TablePrefix`, `KeystorePasswordSecretName`.
pub fn from_stack(
    stack: &str,
    parameters: &[(String, String)],
    outputs: &[(String, String)],
) -> Result<Profile, StackError> {
    let find = |list: &[(String, String)], name: &str| {
        list.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let output = |name: &'static str| {
        find(outputs, name).ok_or(StackError::Missing {
            stack: stack.to_string(),
            what: "output",
            name,
        })
    };
    let parameter = |name: &'static str| {
        find(parameters, name).ok_or(StackError::Missing {
            stack: stack.to_string(),
            what: "parameter",
            name,
        })
    };
    Ok(Profile {
        stack: Some(stack.to_string()),
        account_id: find(parameters, "AccountId"),
        bucket: Some(output("BucketName")?),
        table_prefix: find(parameters, "TablePrefix").unwrap_or_else(default_prefix),
        dead_letter_url: find(outputs, "DeadLetterQueueUrl"),
        keystore_password_secret: parameter("KeystorePasswordSecretName")?,
        as2_url: find(outputs, "As2EndpointUrl"),
        ..Profile::new(output("SendQueueUrl")?)
    })
}

/// A stack that is not an mftg deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    /// An output or parameter the templates have is missing.
    #[error(
        "stack {stack} has no {what} {name}: is it an mftg deployment (infra/sam or infra/cdk)?"
    )]
    Missing {
        /// The stack.
        stack: String,
        /// `output` or `parameter`.
        what: &'static str,
        /// Its name.
        name: &'static str,
    },
}

/// Reads a stack's parameters and outputs through CloudFormation's DescribeStacks.
pub async fn read_stack(conf: &aws_config::SdkConfig, stack: &str) -> gateway::Result<Profile> {
    let client = aws_sdk_cloudformation::Client::new(conf);
    let out = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_cloudformation::error::ProvideErrorMetadata as _;
            if e.code() == Some("ValidationError") {
                gateway::GatewayError::NotFound(format!(
                    "stack {stack} (in this account and region)"
                ))
            } else {
                gateway::GatewayError::port(
                    "cloudformation",
                    format!("DescribeStacks: {}", crate::error::describe(&e)),
                )
            }
        })?;
    let Some(s) = out.stacks().first() else {
        return Err(gateway::GatewayError::NotFound(format!("stack {stack}")));
    };
    let parameters: Vec<(String, String)> = s
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_string(),
                p.resolved_value()
                    .or(p.parameter_value())
                    .unwrap_or_default()
                    .to_string(),
            ))
        })
        .collect();
    let outputs: Vec<(String, String)> = s
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    from_stack(stack, &parameters, &outputs)
        .map_err(|e| gateway::GatewayError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            region: Some("eu-west-1".into()),
            account_id: Some("123456789012".into()),
            ..Profile::new("https://sqs.eu-west-1.amazonaws.com/1/q")
        }
    }

    #[test]
    fn the_bucket_is_named_after_the_account_as_the_templates_name_it() {
        let s = profile().settings().unwrap();
        assert_eq!(s.bucket, "mftg-123456789012");
        assert_eq!(s.tables.messages, "mftg-messages");
        assert_eq!(s.keystore_passwords.trust, "mftg/keystore-password");
    }

    #[test]
    fn a_stack_names_its_deployment_by_the_templates_outputs() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let params = pairs(&[
            ("AccountId", "123456789012"),
            ("TablePrefix", "acme"),
            ("KeystorePasswordSecretName", "acme/ks"),
        ]);
        let outputs = pairs(&[
            ("BucketName", "mftg-123456789012"),
            ("SendQueueUrl", "https://sqs/q"),
            ("DeadLetterQueueUrl", "https://sqs/dlq"),
            ("As2EndpointUrl", "https://x.lambda-url.eu-west-1.on.aws/"),
        ]);
        let p = from_stack("mftg", &params, &outputs).unwrap();
        assert_eq!(p.table_prefix, "acme");
        assert_eq!(p.dead_letter_url.as_deref(), Some("https://sqs/dlq"));
        assert_eq!(p.settings().unwrap().tables.claims, "acme-claims");
        let e = from_stack("other", &params, &outputs[1..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "stack other has no output BucketName: is it an mftg deployment (infra/sam or infra/cdk)?"
        );
    }

    #[test]
    fn profiles_that_name_no_deployment_are_refused() {
        let mut p = profile();
        p.account_id = Some("12345".into());
        assert_eq!(p.check(), Err(ProfileError::AccountId("12345".into())));
        p.account_id = None;
        assert_eq!(p.check(), Err(ProfileError::NoBucket));
        p.bucket = Some("mine".into());
        p.queue_url = " ".into();
        assert_eq!(p.check(), Err(ProfileError::Empty("queue_url")));
    }
}
