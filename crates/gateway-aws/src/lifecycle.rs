//! The seed's lifecycle rules (section 2.2) on an account bucket, for buckets made outside the
//! templates (or at run time). PutBucketLifecycleConfiguration replaces the whole
//! configuration, so the installer reads the rules the bucket has, keeps every rule that is not
//! one of ours as it is, adds or corrects ours (known by their IDs, `mftg-...`), and writes only
//! when something changes. [`plan`] says what would change without writing.
//!
//! The rules: objects under `AS2/files/`, `AS2/raw-message/`, `AS2/raw-mdn/` and `AS2/headers/`
//! become noncurrent 35 days after creation and are deleted 35 days after that (70 in all);
//! `AS2/tmp/` 1 day and 1 more; delete markers left with no versions behind them are removed
//! under `AS2/`; multipart uploads left incomplete are aborted after 7 days. Nothing else
//! expires: `AS2/send/`, `AS2/duplicate/` and `AS2/keystore/` are kept until someone deletes them.
//!
//! Two installers running at once on one bucket can overwrite each other's write (S3 has no
//! conditional write for lifecycle configurations); running it again settles it.

use std::fmt;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
};
use aws_sdk_s3::Client;
use gateway::{layout, GatewayError, Result};

/// Our expiring prefixes, from the layout's [`layout::RETENTION`]: (rule ID `mftg-<root>`,
/// prefix, days to noncurrent, days noncurrent until deleted).
pub fn expiring() -> Vec<(String, &'static str, i32, i32)> {
    layout::RETENTION
        .iter()
        .map(|r| {
            (
                format!("mftg-{}", r.name()),
                r.root,
                r.current_days as i32,
                r.noncurrent_days as i32,
            )
        })
        .collect()
}

/// The rule removing expired delete markers.
pub const DELETE_MARKERS_RULE: &str = "mftg-expired-delete-markers";
/// The rule aborting incomplete multipart uploads.
pub const INCOMPLETE_UPLOADS_RULE: &str = "mftg-incomplete-uploads";

fn built(rule: aws_sdk_s3::types::builders::LifecycleRuleBuilder) -> LifecycleRule {
    #[allow(clippy::expect_used)] // `status` is always set: the builder cannot fail
    rule.status(ExpirationStatus::Enabled)
        .build()
        .expect("a lifecycle rule with a status")
}

/// The seed's rules, in the order they are written.
pub fn seed_rules() -> Vec<LifecycleRule> {
    let mut rules: Vec<LifecycleRule> = expiring()
        .into_iter()
        .map(|(id, prefix, days, noncurrent)| {
            built(
                LifecycleRule::builder()
                    .id(id)
                    .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
                    .expiration(LifecycleExpiration::builder().days(days).build())
                    .noncurrent_version_expiration(
                        NoncurrentVersionExpiration::builder()
                            .noncurrent_days(noncurrent)
                            .build(),
                    ),
            )
        })
        .collect();
    rules.push(built(
        LifecycleRule::builder()
            .id(DELETE_MARKERS_RULE)
            .filter(LifecycleRuleFilter::builder().prefix(layout::ROOT).build())
            .expiration(
                LifecycleExpiration::builder()
                    .expired_object_delete_marker(true)
                    .build(),
            ),
    ));
    rules.push(built(
        LifecycleRule::builder()
            .id(INCOMPLETE_UPLOADS_RULE)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(layout::INCOMPLETE_UPLOAD_DAYS as i32)
                    .build(),
            ),
    ));
    rules
}

/// What a rule does, independent of how S3 happens to spell it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// Enabled or not.
    pub enabled: bool,
    /// The prefix it applies to (`None`: a filter other than a plain prefix, such as tags).
    pub prefix: Option<String>,
    /// Days until current versions expire.
    pub expiration_days: Option<i32>,
    /// Whether expired delete markers are removed.
    pub expired_delete_markers: bool,
    /// Days noncurrent versions are kept.
    pub noncurrent_days: Option<i32>,
    /// Days after which incomplete multipart uploads are aborted.
    pub abort_incomplete_days: Option<i32>,
    /// Whether it moves objects to other storage classes.
    pub transitions: bool,
}

impl Effect {
    /// What `rule` does.
    pub fn of(rule: &LifecycleRule) -> Effect {
        #[allow(deprecated)] // the rule-level prefix of old configurations
        let legacy_prefix = rule.prefix().map(str::to_string);
        let prefix = match rule.filter() {
            Some(f) if f.and().is_none() && f.tag().is_none() => {
                Some(f.prefix().unwrap_or("").to_string())
            }
            Some(_) => None,
            None => Some(legacy_prefix.unwrap_or_default()),
        };
        let expiration = rule.expiration();
        Effect {
            enabled: rule.status() == &ExpirationStatus::Enabled,
            prefix,
            expiration_days: expiration.and_then(|e| e.days()).filter(|d| *d > 0),
            expired_delete_markers: expiration
                .and_then(|e| e.expired_object_delete_marker())
                .unwrap_or(false),
            noncurrent_days: rule
                .noncurrent_version_expiration()
                .and_then(|n| n.noncurrent_days())
                .filter(|d| *d > 0),
            abort_incomplete_days: rule
                .abort_incomplete_multipart_upload()
                .and_then(|a| a.days_after_initiation())
                .filter(|d| *d > 0),
            transitions: !rule.transitions().is_empty()
                || !rule.noncurrent_version_transitions().is_empty(),
        }
    }
}

/// What the installer does to one of our rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The bucket does not have it: added.
    Add(String),
    /// The bucket has a rule with this ID that does something else: replaced.
    Replace(String),
    /// Already there as it should be.
    Keep(String),
}

/// The installer's plan for one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Our rules, one change each.
    pub changes: Vec<Change>,
    /// IDs of the bucket's other rules, kept as they are.
    pub foreign: Vec<String>,
    /// The whole configuration to write.
    pub rules: Vec<LifecycleRule>,
}

impl Plan {
    /// True when the bucket already has everything.
    pub fn is_noop(&self) -> bool {
        self.changes.iter().all(|c| matches!(c, Change::Keep(_)))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ours = seed_rules();
        for change in &self.changes {
            let (sign, id) = match change {
                Change::Add(id) => ("+", id),
                Change::Replace(id) => ("~", id),
                Change::Keep(id) => ("=", id),
            };
            let what = ours
                .iter()
                .find(|r| r.id() == Some(id.as_str()))
                .map(|r| describe(&Effect::of(r)))
                .unwrap_or_default();
            writeln!(f, "{sign} {id}: {what}")?;
        }
        for id in &self.foreign {
            writeln!(f, "  {id}: not ours, kept as it is")?;
        }
        Ok(())
    }
}

/// One line saying what a rule does.
pub fn describe(e: &Effect) -> String {
    let mut parts = Vec::new();
    let scope = match &e.prefix {
        Some(p) if p.is_empty() => "the whole bucket".to_string(),
        Some(p) => p.clone(),
        None => "a tag filter".to_string(),
    };
    if let Some(d) = e.expiration_days {
        parts.push(format!("noncurrent after {d} day(s)"));
    }
    if let Some(d) = e.noncurrent_days {
        parts.push(format!("then deleted after {d} more"));
    }
    if e.expired_delete_markers {
        parts.push("expired delete markers removed".into());
    }
    if let Some(d) = e.abort_incomplete_days {
        parts.push(format!(
            "incomplete multipart uploads aborted after {d} day(s)"
        ));
    }
    format!("{scope}: {}", parts.join(", "))
}

/// The plan for a bucket whose rules are `existing`.
pub fn plan(existing: &[LifecycleRule]) -> Plan {
    let ours = seed_rules();
    let is_ours = |r: &LifecycleRule| ours.iter().any(|o| o.id().is_some() && o.id() == r.id());
    let mut changes = Vec::new();
    for o in &ours {
        let id = o.id().unwrap_or_default().to_string();
        match existing.iter().find(|r| r.id() == o.id()) {
            None => changes.push(Change::Add(id)),
            Some(r) if Effect::of(r) == Effect::of(o) => changes.push(Change::Keep(id)),
            Some(_) => changes.push(Change::Replace(id)),
        }
    }
    let foreign: Vec<LifecycleRule> = existing.iter().filter(|r| !is_ours(r)).cloned().collect();
    Plan {
        changes,
        foreign: foreign
            .iter()
            .map(|r| r.id().unwrap_or("(no id)").to_string())
            .collect(),
        rules: foreign.into_iter().chain(ours).collect(),
    }
}

fn s3_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    bucket: &str,
    e: &aws_sdk_s3::error::SdkError<E>,
) -> GatewayError {
    if e.code() == Some("NoSuchBucket") {
        return GatewayError::NotFound(format!("bucket {bucket}"));
    }
    GatewayError::port(
        "s3",
        format!("{op} {bucket}: {}", crate::error::describe(e)),
    )
}

/// The bucket's lifecycle rules (none when it has no configuration).
pub async fn current(client: &Client, bucket: &str) -> Result<Vec<LifecycleRule>> {
    match client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(out.rules().to_vec()),
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
        Err(e) => Err(s3_error("GetBucketLifecycleConfiguration", bucket, &e)),
    }
}

/// Plans, and writes the merged configuration when `apply` and something changes.
pub async fn install(client: &Client, bucket: &str, apply: bool) -> Result<Plan> {
    let plan = plan(&current(client, bucket).await?);
    if apply && !plan.is_noop() {
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(plan.rules.clone()))
            .build()
            .map_err(|e| GatewayError::port("s3", e))?;
        client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(|e| s3_error("PutBucketLifecycleConfiguration", bucket, &e))?;
    }
    Ok(plan)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_rules() {
        let effects: Vec<Effect> = seed_rules().iter().map(Effect::of).collect();
        for (e, (_, prefix, days, noncurrent)) in effects.iter().zip(expiring()) {
            assert_eq!(e.prefix.as_deref(), Some(prefix));
            assert_eq!(
                (e.expiration_days, e.noncurrent_days),
                (Some(days), Some(noncurrent))
            );
            assert!(e.enabled && !e.transitions && !e.expired_delete_markers);
        }
        assert!(effects[5].expired_delete_markers);
        assert_eq!(effects[5].expiration_days, None);
        assert_eq!(effects[6].abort_incomplete_days, Some(7));
        assert_eq!(effects[6].prefix.as_deref(), Some(""));
        for kept in layout::KEPT {
            assert!(
                !effects.iter().any(|e| e.expiration_days.is_some()
                    && e.prefix.as_deref().is_some_and(|p| kept.starts_with(p))),
                "{kept} must not expire"
            );
        }
    }

    #[test]
    fn merging_keeps_foreign_rules_and_fixes_ours() {
        let foreign = built(
            LifecycleRule::builder()
                .id("archive-logs")
                .filter(LifecycleRuleFilter::builder().prefix("logs/").build())
                .expiration(LifecycleExpiration::builder().days(400).build()),
        );
        let wrong = built(
            LifecycleRule::builder()
                .id("mftg-tmp")
                .filter(LifecycleRuleFilter::builder().prefix("AS2/tmp/").build())
                .expiration(LifecycleExpiration::builder().days(30).build()),
        );
        let p = plan(&[foreign.clone(), wrong]);
        assert_eq!(p.foreign, ["archive-logs"]);
        assert_eq!(p.rules.len(), 8);
        assert_eq!(p.rules[0], foreign);
        assert!(p.changes.contains(&Change::Replace("mftg-tmp".into())));
        assert!(p.changes.contains(&Change::Add("mftg-files".into())));
        assert!(!p.is_noop());
        let again = plan(&p.rules);
        assert!(again.is_noop(), "{again}");
        assert_eq!(again.rules, p.rules);
        let text = p.to_string();
        assert!(
            text.contains(
                "~ mftg-tmp: AS2/tmp/: noncurrent after 1 day(s), then deleted after 1 more"
            ),
            "{text}"
        );
        assert!(text.contains("archive-logs: not ours"), "{text}");
    }
}
