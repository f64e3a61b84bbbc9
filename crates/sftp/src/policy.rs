//! What a Transfer Family user gets: a home whose `/` is the account bucket (so `sftp` lands
//! where the seed says), and a session policy allowing that bucket except `AS2/keystore` and
//! `AS2/tmp`, which users must neither read, write nor list (seed section 1.3).

use serde_json::{json, Value};

use crate::error::{Result, SftpError};

/// Checks an account ID: it names the bucket `mftg-<account-id>` and goes into the session
/// policy's resource ARNs, so it must be a valid bucket name part and can hold no wildcard.
pub fn check_account_id(account: &str) -> Result<()> {
    let refuse = |rule| {
        Err(SftpError::InvalidAccount {
            account: account.chars().take(70).collect(),
            rule,
        })
    };
    if account.is_empty() {
        return refuse("it is empty");
    }
    // S3 bucket names are at most 63 characters; "mftg-" takes 5.
    if account.len() > 58 {
        return refuse("it must be at most 58 characters long (the bucket name mftg-<account-id> has at most 63)");
    }
    if !account
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return refuse(
            "only lowercase letters, digits and hyphens may be used (it is part of a bucket name)",
        );
    }
    if account.ends_with('-') || account.contains("--") {
        return refuse("it cannot end with a hyphen or contain two in a row (bucket naming rules)");
    }
    Ok(())
}

/// The account bucket: `mftg-<account-id>`.
pub fn bucket(account_id: &str) -> String {
    format!("mftg-{account_id}")
}

/// Prefixes SFTP users may not touch: the layout's private roots, without their slash.
fn private_prefixes() -> impl Iterator<Item = &'static str> {
    gateway::layout::PRIVATE
        .iter()
        .map(|root| root.strip_suffix('/').unwrap_or(root))
}

/// Object actions an SFTP user needs (and is denied under the private prefixes).
const OBJECT_ACTIONS: [&str; 7] = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObjectACL",
    "s3:PutObjectACL",
];

/// The session policy for users of `account_id`'s bucket.
pub fn session_policy(account_id: &str) -> Value {
    let bucket_arn = format!("arn:aws:s3:::{}", bucket(account_id));
    let private_objects: Vec<String> = private_prefixes()
        .map(|p| format!("{bucket_arn}/{p}/*"))
        .collect();
    let private_listing: Vec<String> = private_prefixes()
        .flat_map(|p| [p.to_string(), format!("{p}/*")])
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListAccountBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "UseAccountObjects",
                "Effect": "Allow",
                "Action": OBJECT_ACTIONS,
                "Resource": format!("{bucket_arn}/*"),
            },
            {
                "Sid": "DenyPrivateObjects",
                "Effect": "Deny",
                "Action": OBJECT_ACTIONS,
                "Resource": private_objects,
            },
            {
                "Sid": "DenyPrivateListing",
                "Effect": "Deny",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": private_listing}},
            }
        ]
    })
}

/// The logical home mapping: the user's `/` is the account bucket.
pub fn home_mapping(account_id: &str) -> (String, String) {
    ("/".into(), format!("/{}", bucket(account_id)))
}

/// Tags for the Transfer Family user.
pub fn tags(account_id: &str) -> Vec<(String, String)> {
    vec![
        ("mftg:account".into(), account_id.into()),
        ("mftg:managed-by".into(), "mftg-sftp-provisioner".into()),
    ]
}

/// The command a user runs to connect.
pub fn connect_command(username: &str, endpoint: &str, key_file: &str) -> String {
    format!("sftp -i {key_file} {username}@{endpoint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        for ok in ["123456789012", "acme", "a-1"] {
            assert!(check_account_id(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("*", "lowercase letters"),
            ("acme/*", "lowercase letters"),
            ("Acme", "lowercase letters"),
            ("a\"b", "lowercase letters"),
            ("acme-", "end with a hyphen"),
            ("a--b", "two in a row"),
            (&"1".repeat(59), "at most 58"),
        ] {
            let e = check_account_id(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn exact_statements() {
        let p = session_policy("123456789012");
        assert_eq!(p["Version"], "2012-10-17");
        let st = p["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 4);
        assert_eq!(st[0]["Resource"], "arn:aws:s3:::mftg-123456789012");
        assert_eq!(st[1]["Resource"], "arn:aws:s3:::mftg-123456789012/*");
        assert_eq!(st[2]["Effect"], "Deny");
        assert_eq!(
            st[2]["Resource"],
            json!([
                "arn:aws:s3:::mftg-123456789012/AS2/keystore/*",
                "arn:aws:s3:::mftg-123456789012/AS2/tmp/*"
            ])
        );
        for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
            assert!(st[2]["Action"].as_array().unwrap().contains(&json!(action)));
        }
        assert_eq!(st[3]["Effect"], "Deny");
        assert_eq!(st[3]["Action"], "s3:ListBucket");
        assert_eq!(
            st[3]["Condition"]["StringLike"]["s3:prefix"],
            json!(["AS2/keystore", "AS2/keystore/*", "AS2/tmp", "AS2/tmp/*"])
        );
        // Every action named is an S3 action on this bucket; nothing is a wildcard.
        let text = p.to_string();
        assert!(!text.contains("s3:*") && !text.contains("\"*\""));
        assert!(serde_json::from_str::<Value>(&text).is_ok());
        // Transfer Family takes session policies of up to 2048 characters, even for the longest
        // account ID.
        assert!(session_policy(&"9".repeat(58)).to_string().len() <= 2048);
        assert_eq!(home_mapping("1"), ("/".to_string(), "/mftg-1".to_string()));
        assert_eq!(
            connect_command(
                "acme",
                "s-1.server.transfer.eu-west-1.amazonaws.com",
                "acme.pem"
            ),
            "sftp -i acme.pem acme@s-1.server.transfer.eu-west-1.amazonaws.com"
        );
    }
}
