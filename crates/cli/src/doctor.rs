//! `mftg doctor`: one line per check of an embedded gateway's setup (configuration, data
//! directory, database, keystores, every station key and partner certificate, partnerships'
//! secrets, the endpoint answering), and a non-zero exit when one fails. The key and certificate
//! checks are the node's own (`Node::checks`), the ones `mftg serve` makes before it starts.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use gateway_local::{Check, Config, Node, Verdict};

use crate::backend::ConfigArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
}

fn line(c: &Check) -> bool {
    let (tag, detail, failed) = match &c.verdict {
        Verdict::Ok(d) => ("ok  ", d, false),
        Verdict::Warning(d) => ("warn", d, false),
        Verdict::Failed(d) => ("FAIL", d, true),
    };
    out!("{tag}  {}: {detail}", c.what);
    failed
}

fn check(what: &str, result: Result<String, String>) -> Check {
    Check::of(what, result.map_err(|e| one_line(&e)))
}

/// An error that spans lines (a TOML error shows the line it is about) as one: its first line
/// and its last, the snippet between left out.
fn one_line(e: &str) -> String {
    let e = e.strip_prefix("configuration: ").unwrap_or(e);
    let lines: Vec<&str> = e.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => only.to_string(),
        [first, .., last] => format!("{first}: {last}"),
    }
}

/// Whether the data directory takes a file (written under `AS2/tmp/` and removed).
fn writable(c: &Config) -> Result<String, String> {
    let dir = c.data_dir.join(gateway::layout::TMP);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let probe = dir.join(format!(".mftg-doctor-{}", as2::random_hex(4)));
    std::fs::write(&probe, b"doctor").map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(format!("{} is writable", c.data_dir.display()))
}

/// Whether the endpoint answers `GET /health` (a running `mftg serve`).
fn health(c: &Config) -> Result<String, String> {
    let addr = c.listen;
    let not = |why: String| {
        format!("nothing answers at http://{addr}/health ({why}): is `mftg serve` running?")
    };
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| not(e.to_string()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| not(e.to_string()))?;
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| not(e.to_string()))?;
    let mut reply = Vec::new();
    let _ = s.take(4096).read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    if reply.starts_with("HTTP/1.1 200") {
        Ok(format!("http://{addr}/health answers"))
    } else {
        Err(not(format!(
            "answered {:?}",
            reply.lines().next().unwrap_or("nothing")
        )))
    }
}

/// Where the receiver answers `GET /health`: the AS2 URL with its `/as2` path replaced.
#[cfg(feature = "aws")]
fn health_url(as2_url: &str) -> String {
    let base = as2_url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/as2").unwrap_or(base);
    format!("{base}/health")
}

#[cfg(feature = "aws")]
fn run_aws(config: &ConfigArg) -> Result<ExitCode, String> {
    use crate::backend::Target;
    let mut failed = false;
    let b = match config.open() {
        Ok(b) => b,
        Err(e) => {
            line(&check("profile", Err(e)));
            return Ok(ExitCode::from(1));
        }
    };
    let Target::Aws(a) = &b.target else {
        return Err("not an AWS deployment".into());
    };
    line(&check(
        "profile",
        Ok(format!(
            "bucket {}, tables {}-*, region {}{}",
            a.settings.bucket,
            a.profile.table_prefix,
            a.conf.region().map_or("(none)", |r| r.as_ref()),
            a.profile
                .stack
                .as_ref()
                .map_or(String::new(), |s| format!(", stack {s}"))
        )),
    ));
    for c in b.rt.block_on(gateway_aws::doctor::deployment_checks(
        &a.settings,
        &a.gateway.ports,
    )) {
        failed |= line(&c);
    }
    match (b.stations(), b.partnerships()) {
        (Ok(stations), Ok(partnerships)) => {
            failed |= line(&check(
                "stations and partnerships",
                Ok(format!(
                    "{} station(s), {} partnership(s)",
                    stations.len(),
                    partnerships.len()
                )),
            ));
            for c in
                b.rt.block_on(a.gateway.setting_checks(&stations, &partnerships))
            {
                failed |= line(&c);
            }
        }
        (Err(e), _) | (_, Err(e)) => failed |= line(&check("stations and partnerships", Err(e))),
    }
    match &a.profile.as2_url {
        Some(url) => {
            let health = health_url(url);
            let answer = b.rt.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| e.to_string())?;
                let r = client.get(&health).send().await.map_err(|e| {
                    let mut text = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        text = format!("{text}: {s}");
                        src = s.source();
                    }
                    text
                })?;
                if r.status().is_success() {
                    Ok(format!("{health} answers"))
                } else {
                    Err(format!("{health} answered {}", r.status()))
                }
            });
            failed |= line(&check(
                "receiver",
                answer.map_err(|e| format!("nothing answers at {health} ({e})")),
            ));
        }
        None => {
            line(&Check::warning(
                "receiver",
                "the profile names no as2_url: its /health was not asked",
            ));
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    #[cfg(feature = "aws")]
    if a.config.names_aws() {
        return run_aws(&a.config);
    }
    let mut failed = false;
    let config = match Config::load(&a.config.config) {
        Ok(c) => {
            line(&check(
                "configuration",
                Ok(format!(
                    "{}: {} station(s), {} partnership(s)",
                    a.config.config.display(),
                    c.stations.len(),
                    c.partnerships.len()
                )),
            ));
            c
        }
        Err(e) => {
            line(&check("configuration", Err(e.to_string())));
            return Ok(ExitCode::from(1));
        }
    };
    failed |= line(&check("data directory", writable(&config)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match Node::open(config.clone()) {
        Ok(node) => {
            let waiting = node
                .gateway
                .ports
                .queue
                .pending_jobs()
                .map(|n| format!("{} opens; {n} job(s) waiting", config.database().display()));
            failed |= line(&check("database", waiting.map_err(|e| e.to_string())));
            for c in runtime.block_on(node.checks()) {
                failed |= line(&c);
            }
        }
        // Opening the node opens the database (and the data directory's store).
        Err(e) => failed |= line(&check("database", Err(e.to_string()))),
    }
    failed |= line(&check("endpoint", health(&config)));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
