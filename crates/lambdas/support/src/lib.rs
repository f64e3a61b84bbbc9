//! What every Lambda binary does the same way.

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
