//! `sftp-provisioner`: the Lambda behind the console's SFTP page (seed sections 1.2 and 1.4).
//! Takes a JSON request (`events/sftp-provisioner/*.json`), returns the user's access, with the
//! generated private key in the reply only. Configuration (environment):
//!
//! - `MFTG_SFTP_SERVER_ID`: the Transfer Family server (`s-...`), service-managed, SFTP.
//! - `MFTG_SFTP_USER_ROLE_ARN`: the role users' sessions assume (the session policy narrows it).
//! - `MFTG_SFTP_HOST` (optional): the host name users connect to, if not the server's own.
//!
//! Bad requests come back as `{"ok": false, "error": "<code>", "message": "..."}`; failures of
//! Transfer Family itself fail the invocation (so asynchronous invocations are retried).

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::{json, Value};
use sftp::provision::{Outcome, Provisioner, Request, Settings};

use gateway_aws::transfer::TransferFamily;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON when the function is configured for JSON logs (the templates configure it).
    lambda_runtime::tracing::init_default_subscriber();
    let configured = |name| {
        lambda_support::required_env(name).inspect_err(|e| tracing::error!("configuration: {e}"))
    };
    let server_id = configured("MFTG_SFTP_SERVER_ID")?;
    let settings = Settings {
        role_arn: configured("MFTG_SFTP_USER_ROLE_ARN")?,
        host: lambda_support::optional_env("MFTG_SFTP_HOST"),
    };
    // AWS_ENDPOINT_URL, when set, points every client at an emulator.
    let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint::default()).await;
    let provisioner = Provisioner::new(TransferFamily::from_conf(&conf, server_id), settings);
    let provisioner = &provisioner;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(provisioner, event.payload).await
    }))
    .await
}

async fn handle(p: &Provisioner<TransferFamily>, payload: Value) -> Result<Value, Diagnostic> {
    // The request may hold a passphrase: it is never logged, only what it asks for.
    let action = payload
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let account = payload
        .get("account_id")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let username = payload
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let request: Request = match serde_json::from_value(payload) {
        Ok(r) => r,
        Err(e) => {
            let message = request_error(&e);
            tracing::warn!(%action, %account, %username, "refused: {message}");
            return Ok(json!({"ok": false, "error": "invalid_request", "message": message}));
        }
    };
    match p.handle(request).await {
        Ok(outcome) => {
            log_outcome(&outcome);
            let mut reply = serde_json::to_value(&outcome).map_err(|e| Diagnostic {
                error_type: "serialize".into(),
                error_message: e.to_string(),
            })?;
            if let Value::Object(map) = &mut reply {
                map.insert("ok".into(), Value::Bool(true));
            }
            Ok(reply)
        }
        Err(e) if e.is_request_error() => {
            tracing::warn!(%action, %account, %username, code = e.code(), "refused: {e}");
            Ok(json!({"ok": false, "error": e.code(), "message": e.to_string()}))
        }
        Err(e) => {
            tracing::error!(%action, %account, %username, code = e.code(), "failed: {e}");
            Err(Diagnostic {
                error_type: e.code().into(),
                error_message: e.to_string(),
            })
        }
    }
}

/// Why a request could not be read, without repeating any value from it: a misplaced private
/// key or passphrase must not come back in the reply or reach the log.
fn request_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let echoes = text.starts_with("invalid type") || text.starts_with("invalid value");
    match text.find(", expected ") {
        Some(i) if echoes => format!(
            "not a valid request: a value has the wrong type or form ({})",
            &text[i + 2..]
        ),
        _ => format!("not a valid request: {text}"),
    }
}

fn log_outcome(outcome: &Outcome) {
    let (what, access) = match outcome {
        Outcome::Enabled(a) => ("enabled", a),
        Outcome::Rotated(a) => ("rotated", a),
        Outcome::Described(a) => ("described", a),
        Outcome::Disabled {
            account_id,
            username,
            removed_keys,
        } => {
            let removed: Vec<&str> = removed_keys
                .iter()
                .map(|k| k.fingerprint.as_str())
                .collect();
            tracing::info!(account = %account_id, %username, ?removed, "disabled");
            return;
        }
    };
    let keys: Vec<&str> = access.keys.iter().map(|k| k.fingerprint.as_str()).collect();
    tracing::info!(
        account = %access.account_id,
        username = %access.username,
        ?keys,
        generated = access.private_key.is_some(),
        warnings = access.warnings.len(),
        "{what}"
    );
}
