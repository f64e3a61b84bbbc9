//! What every Lambda binary does the same way.

/// Logs to stdout (CloudWatch): JSON lines when the function's log format is JSON
/// (`AWS_LAMBDA_LOG_FORMAT=JSON`), plain text otherwise; never colour codes; level from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default `info`). The same as lambda_runtime's
/// `init_default_subscriber`, except that one leaves ANSI colours on wherever
/// tracing-subscriber's `ansi` feature is compiled in (in this workspace's test builds, which
/// the CLI's colours bring in), and CloudWatch shows colour codes as text.
pub fn init_logging() {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let fmt = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

/// A function's environment that cannot work: it stops at init, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A required variable is unset or empty.
    #[error("{0} is not set")]
    Missing(String),
    /// A variable's value cannot be used.
    #[error("{name} {problem}")]
    Invalid {
        /// The variable.
        name: String,
        /// What is wrong with it, as the rest of a sentence after its name.
        problem: String,
    },
    /// A setting read from variables is refused by the gateway's own check.
    #[error("{name}: {problem}")]
    Refused {
        /// The variable (or variables, `MFTG_RETRY_*`).
        name: String,
        /// The check's reason.
        problem: String,
    },
}

impl EnvError {
    /// `name`'s value cannot be used: `problem` follows the name in the message.
    pub fn invalid(name: &str, problem: impl std::fmt::Display) -> EnvError {
        EnvError::Invalid {
            name: name.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// A required setting from the environment.
pub fn required_env(name: &str) -> Result<String, EnvError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| EnvError::Missing(name.to_string()))
}

/// An optional setting from the environment (empty counts as unset).
pub fn optional_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
