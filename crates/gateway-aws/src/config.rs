//! The SDK configuration: the default chain on AWS (Lambda's role, the CLI's profile), or a fixed
//! endpoint (moto, LocalStack) for tests and local runs.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where the AWS APIs are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// An endpoint URL to use for every service instead of AWS's (e.g. `http://127.0.0.1:5000`).
    pub url: Option<String>,
    /// The region; the default chain's if `None`.
    pub region: Option<String>,
}

/// Loads the SDK configuration. With an endpoint URL and no credentials in the environment,
/// fixed test credentials are used: emulators accept any.
pub async fn load(endpoint: &Endpoint) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &endpoint.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &endpoint.url {
        loader = loader.endpoint_url(url.clone());
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(aws_sdk_transfer::config::Credentials::new(
                "emulator",
                "emulator",
                None,
                None,
                "mftg-endpoint-override",
            ));
        }
    }
    loader.load().await
}
