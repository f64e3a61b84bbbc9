//! `mftg infra`: what the deployment templates do, for buckets made outside them.

use std::process::ExitCode;

use clap::Subcommand;
use gateway_aws::config::Endpoint;

#[derive(Subcommand)]
pub enum InfraCommand {
    /// Puts the seed's lifecycle rules on an existing bucket, keeping the rules it has.
    Lifecycle(LifecycleArgs),
}

#[derive(clap::Args)]
pub struct LifecycleArgs {
    /// The bucket (mftg-<account-id>).
    #[arg(long)]
    bucket: String,
    /// Show what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Talk to this endpoint instead of AWS (moto, LocalStack).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// The AWS region (default: the AWS configuration's).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
}

pub fn run(command: InfraCommand) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        match command {
            InfraCommand::Lifecycle(a) => {
                let conf = gateway_aws::config::load(&Endpoint {
                    url: a.endpoint_url.clone().filter(|u| !u.is_empty()),
                    region: a.region.clone().filter(|r| !r.is_empty()),
                })
                .await;
                let s3 = gateway_aws::s3::client(&conf);
                let plan = gateway_aws::lifecycle::install(&s3, &a.bucket, !a.dry_run)
                    .await
                    .map_err(|e| e.to_string())?;
                print!("{plan}");
                let verdict = match (plan.is_noop(), a.dry_run) {
                    (true, _) => "the lifecycle rules are in place; nothing to do",
                    (false, true) => "dry run: nothing written",
                    (false, false) => "lifecycle configuration written",
                };
                println!("{}: {verdict}", a.bucket);
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
