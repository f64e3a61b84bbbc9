//! `mftg console`: the operator console and REST API over the backend a configuration file or
//! profile names, and what each backend lists and does for it.

use std::path::PathBuf;
use std::process::ExitCode;

use gateway::model::{Partnership, Station};
use gateway::ports::{Clock as _, ParkedJob, Ports as _};
use gateway::{Gateway, GatewayError, Result};
use std::sync::Arc;

use gateway_local::{Config, LocalPorts, Node};

use crate::backend::{ConfigArg, Target};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// Where to listen. Anyone who can reach it and has the token can act on the gateway:
    /// keep it on 127.0.0.1 (or behind a TLS proxy).
    #[arg(long, default_value = "127.0.0.1:8480")]
    listen: String,
    /// The file holding the token (made, readable by its owner only, when it is not there).
    /// Default: `.mftg/console.token` in the data directory; beside the profile on AWS.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

/// The embedded gateway, for the console: its settings are read from the configuration file on
/// every request, so what `mftg partners add` changes shows at once.
pub struct LocalConsole {
    node: Arc<Node>,
    path: PathBuf,
    /// One edit of the configuration file at a time.
    edits: tokio::sync::Mutex<()>,
    /// Whether `node` is the running gateway (the console runs in `mftg serve`): its figures
    /// are then the gateway's.
    serving: bool,
}

impl LocalConsole {
    fn settings(&self) -> Result<Config> {
        Config::load(&self.path).map_err(|e| GatewayError::Config(e.to_string()))
    }

    /// Changes the configuration file; says where, and that a running gateway reads it when
    /// it starts.
    async fn edit(&self, change: impl FnOnce(&mut Config)) -> Result<String> {
        let _one = self.edits.lock().await;
        Config::edit(&self.path, change)?;
        Ok(format!(
            "saved in {}; restart `mftg serve` to use it",
            self.path.display()
        ))
    }
}

/// Up to `limit` of the embedded gateway's parked jobs.
pub async fn local_parked(g: &Gateway<LocalPorts>, limit: usize) -> Result<Vec<ParkedJob>> {
    let mut all = g.ports.queue.parked().await?;
    all.truncate(limit);
    Ok(all)
}

/// Puts the embedded gateway's parked jobs back in the queue: all (at most `limit`), or those
/// whose row number or message record is `only`.
pub async fn local_redrive(
    g: &Gateway<LocalPorts>,
    only: Option<&str>,
    limit: usize,
) -> Result<Vec<ParkedJob>> {
    let now = g.ports.clock().now();
    let wanted: Vec<_> = g
        .ports
        .queue
        .parked()
        .await?
        .into_iter()
        .filter(|p| only.is_none_or(|o| p.id == o || p.record_id() == Some(o)))
        .take(limit)
        .collect();
    for p in &wanted {
        let seq =
            p.id.parse()
                .map_err(|e| GatewayError::port("database", e))?;
        g.ports.queue.redrive(Some(seq), now).await?;
    }
    Ok(wanted)
}

impl console::Backend for LocalConsole {
    type Ports = LocalPorts;

    fn gateway(&self) -> &Gateway<LocalPorts> {
        &self.node.gateway
    }

    async fn stations(&self) -> Result<Vec<Station>> {
        Ok(self.settings()?.stations)
    }

    async fn partnerships(&self) -> Result<Vec<Partnership>> {
        Ok(self.settings()?.partnerships)
    }

    async fn put_station(&self, station: Station) -> Result<String> {
        self.edit(|c| {
            c.stations.retain(|s| s.as2_id != station.as2_id);
            c.stations.push(station);
        })
        .await
    }

    async fn put_partnership(&self, p: Partnership) -> Result<String> {
        self.edit(|c| {
            c.partnerships
                .retain(|q| !(q.station == p.station && q.partner == p.partner));
            c.partnerships.push(p);
        })
        .await
    }

    async fn parked(&self, limit: usize) -> Result<Vec<ParkedJob>> {
        local_parked(&self.node.gateway, limit).await
    }

    async fn redrive(&self, only: Option<String>, limit: usize) -> Result<Vec<ParkedJob>> {
        local_redrive(&self.node.gateway, only.as_deref(), limit).await
    }

    async fn metrics(&self) -> Result<Option<String>> {
        if !self.serving {
            return Ok(None);
        }
        let ports = &self.node.gateway.ports;
        let (queued, parked) = ports.queue.job_counts().await?;
        let certificates = console::certificates(self).await?;
        Ok(Some(ports.events.metrics().encode(
            queued,
            parked,
            &certificates,
        )))
    }

    fn describe(&self) -> String {
        format!("data directory {}", self.node.config.data_dir.display())
    }
}

/// An AWS deployment, for the console.
#[cfg(feature = "aws")]
pub struct AwsConsole {
    aws: Box<crate::backend::Aws>,
}

#[cfg(feature = "aws")]
impl AwsConsole {
    fn saved(&self) -> String {
        format!(
            "saved in table {}; the functions use it from their next message",
            self.aws.settings.tables.partners
        )
    }
}

#[cfg(feature = "aws")]
impl console::Backend for AwsConsole {
    type Ports = gateway_aws::ports::AwsPorts;

    fn gateway(&self) -> &Gateway<Self::Ports> {
        &self.aws.gateway
    }

    async fn stations(&self) -> Result<Vec<Station>> {
        self.aws.gateway.ports.directory.stations().await
    }

    async fn partnerships(&self) -> Result<Vec<Partnership>> {
        self.aws.gateway.ports.directory.partnerships().await
    }

    async fn put_station(&self, station: Station) -> Result<String> {
        self.aws
            .gateway
            .ports
            .directory
            .put_station(&station)
            .await?;
        Ok(self.saved())
    }

    async fn put_partnership(&self, p: Partnership) -> Result<String> {
        self.aws.gateway.ports.directory.put_partnership(&p).await?;
        Ok(self.saved())
    }

    async fn parked(&self, limit: usize) -> Result<Vec<ParkedJob>> {
        self.aws.gateway.ports.queue.dead_letters(limit).await
    }

    async fn redrive(&self, only: Option<String>, limit: usize) -> Result<Vec<ParkedJob>> {
        self.aws
            .gateway
            .ports
            .queue
            .redrive(only.as_deref(), limit)
            .await
    }

    async fn metrics(&self) -> Result<Option<String>> {
        Ok(None)
    }

    fn describe(&self) -> String {
        match &self.aws.profile.stack {
            Some(stack) => format!("deployment {stack} (bucket {})", self.aws.settings.bucket),
            None => format!("deployment (bucket {})", self.aws.settings.bucket),
        }
    }
}

pub fn run(a: Args) -> std::result::Result<ExitCode, String> {
    let backend = a.config.open()?;
    let rt = backend.rt;
    // The token is there before anything listens: whoever sees the port open can read it.
    let (router, token_file) = match backend.target {
        Target::Local { config, path, .. } => {
            let token_file = a.token_file.unwrap_or_else(|| config.console_token_file());
            let node = Node::open(*config).map_err(|e| e.to_string())?;
            let local = LocalConsole {
                node: Arc::new(node),
                path,
                edits: Default::default(),
                serving: false,
            };
            (router(local, &token_file)?, token_file)
        }
        #[cfg(feature = "aws")]
        Target::Aws(aws) => {
            let token_file = match (&a.token_file, &a.config.profile) {
                (Some(f), _) => f.clone(),
                (None, Some(name)) => {
                    crate::backend::profile_file(name)?.with_extension("console-token")
                }
                (None, None) => a.config.config.with_extension("console-token"),
            };
            (router(AwsConsole { aws }, &token_file)?, token_file)
        }
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&a.listen))
        .map_err(|e| format!("cannot listen on {}: {e}", a.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!(
        "console on http://{addr}/ (the token is in {}; send it as Authorization: Bearer <token>)",
        token_file.display()
    );
    rt.block_on(console::serve(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
    .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// The console of the gateway `node` runs, on its `[console]` listener, until `stop`; `None`
/// without a `[console]` section.
pub async fn serve_beside(
    node: &Arc<Node>,
    path: PathBuf,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::result::Result<Option<tokio::task::JoinHandle<()>>, String> {
    let Some(c) = &node.config.console else {
        return Ok(None);
    };
    let token_file = node.config.console_token_file();
    let console = LocalConsole {
        node: node.clone(),
        path,
        edits: Default::default(),
        serving: true,
    };
    // The token first, as in `run`.
    let router = router(console, &token_file)?;
    let listener = tokio::net::TcpListener::bind(c.listen)
        .await
        .map_err(|e| format!("[console] cannot listen on {}: {e}", c.listen))?;
    tracing::info!(address = %c.listen, token = %token_file.display(), "console listening (its API and /metrics too)");
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = console::serve(listener, router, stop).await {
            tracing::error!(error = %e, "console stopped");
        }
    })))
}

/// The console over `backend`, its token from `MFTG_CONSOLE_TOKEN` or `token_file`.
fn router<B: console::Backend>(
    backend: B,
    token_file: &std::path::Path,
) -> std::result::Result<axum::Router, String> {
    let auth = match std::env::var("MFTG_CONSOLE_TOKEN") {
        Ok(t) if !t.is_empty() => {
            console::Auth::with_token(&t).map_err(|e| format!("MFTG_CONSOLE_TOKEN: {e}"))?
        }
        _ => {
            let (auth, made) = console::Auth::load_or_create(token_file)?;
            if made {
                eprintln!("made a new console token in {}", token_file.display());
            }
            auth
        }
    };
    Ok(console::router(std::sync::Arc::new(backend), auth))
}
