//! `mftg infra`: what the deployment templates do, for buckets made outside them.

use std::process::ExitCode;

use clap::Subcommand;
use gateway_aws::config::Endpoint;

#[derive(Subcommand)]
pub enum InfraCommand {
    /// Puts the seed's lifecycle rules on an existing bucket, keeping the rules it has.
    Lifecycle(LifecycleArgs),
    /// Deletes a deployment's data after its stack is gone: every version in the bucket, the
    /// bucket, and the tables the stack kept. Cannot be undone.
    Destroy(DestroyArgs),
}

#[derive(clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    config: crate::backend::ConfigArg,
    /// The bucket's name again, to say this is meant.
    #[arg(long)]
    confirm: String,
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
    if let InfraCommand::Destroy(a) = command {
        return destroy(a);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        match command {
            InfraCommand::Destroy(_) => unreachable!("handled above"),
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

fn destroy(a: DestroyArgs) -> Result<ExitCode, String> {
    use crate::backend::Target;
    if !a.config.names_aws() {
        return Err("destroy acts on an AWS deployment: give --profile NAME".into());
    }
    let b = a.config.open()?;
    let Target::Aws(aws) = &b.target else {
        return Err("destroy acts on an AWS deployment: give --profile NAME".into());
    };
    let bucket = &aws.settings.bucket;
    if &a.confirm != bucket {
        return Err(format!(
            "--confirm {:?} is not the deployment's bucket ({bucket}): nothing deleted",
            a.confirm
        ));
    }
    let store = gateway_aws::s3::S3Store::from_conf(&aws.conf, bucket.clone());
    let n =
        b.rt.block_on(store.delete_bucket_and_versions())
            .map_err(|e| e.to_string())?;
    println!("Deleted {n} object version(s) and delete marker(s), then bucket {bucket}.");
    let tables =
        b.rt.block_on(aws.gateway.ports.directory.delete_tables())
            .map_err(|e| e.to_string())?;
    if tables.is_empty() {
        println!("No tables were left to delete.");
    } else {
        println!("Deleted table(s) {}.", tables.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
