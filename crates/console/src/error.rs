//! The API's errors: an HTTP status and JSON with a stable code, never a secret.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gateway::GatewayError;

/// An error as the API answers it:
/// `{"error": {"code": "bad_filter", "message": "...", "accepted": ["..."]}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for programs: `unauthorized`, `csrf`, `bad_request`, `bad_filter`,
    /// `not_found`, `refused`, `conflict`, `invalid_settings`, `unavailable`, `internal`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The values a parameter takes, where one was wrong.
    pub accepted: Vec<String>,
    /// Each reason settings were refused (`invalid_settings`).
    pub problems: Vec<String>,
}

impl ApiError {
    /// An error without accepted values.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            accepted: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// A query parameter with a value it does not take.
    pub fn bad_filter(message: impl Into<String>, accepted: Vec<String>) -> Self {
        ApiError {
            accepted,
            ..ApiError::new(StatusCode::BAD_REQUEST, "bad_filter", message)
        }
    }

    /// A request without the token, or with another.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this needs the console's token (Authorization: Bearer <token>)",
        )
    }

    /// Nothing under this path.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::NotFound(what) => ApiError::not_found(format!("not found: {what}")),
            GatewayError::Refused(why) => ApiError::new(StatusCode::CONFLICT, "refused", why),
            GatewayError::Conflict(why) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{why}; try again"),
            ),
            GatewayError::InvalidName(_) | GatewayError::UnknownPartnership { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            GatewayError::Port { .. } => {
                tracing::warn!(error = %e, "console: the backend failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                )
            }
            _ => {
                tracing::warn!(error = %e, "console: request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        if !self.accepted.is_empty() {
            error["accepted"] = serde_json::json!(self.accepted);
        }
        if !self.problems.is_empty() {
            error["problems"] = serde_json::json!(self.problems);
        }
        let mut response = (
            self.status,
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"mftg\", Basic realm=\"mftg\""),
            );
        }
        response
    }
}
