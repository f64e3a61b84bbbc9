//! `mftg demo` (what `make run` runs): two embedded gateways, ALPHA and BETA, on 127.0.0.1,
//! exchange EDI files both ways, signed, compressed and encrypted, with a synchronous receipt
//! one way and an asynchronous one the other, and show where every file landed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use as2::keys::{Identity, Keystore};
use gateway::layout::{keystore as ks_paths, Direction};
use gateway::model::{MdnMode, MessageRecord, Partnership, RetryPolicy, Station, Status};
use gateway::ports::{Clock, MessageLog};
use gateway_local::{Config, Node, Shutdown, SystemClock};

#[derive(clap::Args)]
pub struct Args {
    /// Keep both gateways' configuration and data here (replaced if it exists).
    #[arg(long, default_value = "target/mftg-demo")]
    pub dir: PathBuf,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

const PASSWORD_ENV: &str = "MFTG_DEMO_KEYSTORE_PASSWORD";

struct DemoStation {
    id: &'static str,
    dir: PathBuf,
    config: Config,
    listener: tokio::net::TcpListener,
    identity: Identity,
}

fn purchase_order(n: u32) -> String {
    format!(
        "ISA*00*          *00*          *ZZ*ALPHA          *ZZ*BETA           *261128*0547*U*00401*{n:09}*0*P*>~\r\n\
         GS*PO*ALPHA*BETA*20261128*0547*{n}*X*004010~\r\nST*850*0001~\r\nBEG*00*SA*PO-{n}**20261128~\r\n\
         PO1*1*10*EA*9.95**BP*WIDGET-{n}~\r\nCTT*1~\r\nSE*6*0001~\r\nGE*1*{n}~\r\nIEA*1*{n:09}~\r\n"
    )
}

fn ship_notice(n: u32) -> String {
    format!(
        "ISA*00*          *00*          *ZZ*BETA           *ZZ*ALPHA          *261128*0600*U*00401*{n:09}*0*P*>~\r\n\
         GS*SH*BETA*ALPHA*20261128*0600*{n}*X*004010~\r\nST*856*0001~\r\nBSN*00*ASN-{n}*20261128*0600~\r\n\
         SE*3*0001~\r\nGE*1*{n}~\r\nIEA*1*{n:09}~\r\n"
    )
}

fn drop_file(data_dir: &Path, from: &str, to: &str, name: &str, body: &str) -> Result<(), String> {
    let dir = data_dir.join(gateway::layout::SEND).join(from).join(to);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, body).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(demo(args))
}

async fn demo(args: Args) -> Result<ExitCode, String> {
    let started = Instant::now();
    let base = args.dir;
    if base.exists() {
        std::fs::remove_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    }
    // The keystores' password: yours if MFTG_DEMO_KEYSTORE_PASSWORD is set (to look at them
    // afterwards), else a throw-away one.
    if std::env::var(PASSWORD_ENV).is_err() {
        let mut pw = [0u8; 12];
        openssl::rand::rand_bytes(&mut pw).map_err(|e| e.to_string())?;
        std::env::set_var(PASSWORD_ENV, as2::hex(&pw));
    }
    let now = SystemClock.now().unix();

    println!(
        "Setting up two AS2 gateways on 127.0.0.1 in {}",
        base.display()
    );
    let mut stations = Vec::new();
    for id in ["ALPHA", "BETA"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let dir = base.join(id.to_lowercase());
        let mut config = Config::new(dir.join("data"));
        config.listen = addr;
        config.poll_interval_ms = 200;
        config.keystore_password_env = PASSWORD_ENV.into();
        config.stations.push(Station {
            as2_id: id.into(),
            key_alias: id.to_lowercase(),
            mdn_url: Some(format!("http://{addr}/as2")),
            mdn_email: None,
            message_id_domain: Some(format!("{}.example", id.to_lowercase())),
        });
        let identity =
            Identity::generate_self_signed(id, 2048, now, 365).map_err(|e| e.to_string())?;
        println!(
            "  {id:<5} listens on http://{addr}/as2, 2048-bit RSA key in {}",
            ks_paths::IDENTITY
        );
        stations.push(DemoStation {
            id,
            dir,
            config,
            listener,
            identity,
        });
    }
    // Each trusts the other's certificate; ALPHA sends with a synchronous receipt, BETA with an
    // asynchronous one; both sign (SHA-256), compress and encrypt (AES-256-CBC).
    let password = std::env::var(PASSWORD_ENV).map_err(|e| e.to_string())?;
    for i in 0..2 {
        let (me, them) = (&stations[i], &stations[1 - i]);
        let mut identity = Keystore::new();
        identity.set_identity(&me.id.to_lowercase(), &me.identity);
        let mut trust = Keystore::new();
        trust.set_certificate(&them.id.to_lowercase(), &them.identity.certificate);
        for (key, ks) in [(ks_paths::IDENTITY, &identity), (ks_paths::TRUST, &trust)] {
            let path = me.config.data_dir.join(key);
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
                .map_err(|e| e.to_string())?;
            std::fs::write(&path, ks.to_jks(&password, now).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
    }
    for i in 0..2 {
        let them_id = stations[1 - i].id;
        let them_url = format!("http://{}/as2", stations[1 - i].config.listen);
        let me = &mut stations[i];
        let mut p = Partnership::new(me.id, them_id, &them_url, &them_id.to_lowercase());
        p.mdn = if me.id == "ALPHA" {
            MdnMode::Sync
        } else {
            MdnMode::Async
        };
        p.retry = Some(RetryPolicy {
            first_interval_secs: 2,
            ..RetryPolicy::default()
        });
        me.config.partnerships.push(p);
        std::fs::create_dir_all(&me.dir).map_err(|e| e.to_string())?;
        // Saved for looking around afterwards: the data directory relative to the file.
        let mut saved = me.config.clone();
        saved.data_dir = PathBuf::from("data");
        saved
            .save(&me.dir.join("mftg.toml"))
            .map_err(|e| e.to_string())?;
    }

    let (stop, shutdown) = Shutdown::new();
    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    for s in stations {
        let node = Arc::new(Node::open(s.config.clone()).map_err(|e| e.to_string())?);
        tasks.push(tokio::spawn(
            node.clone().serve_on(s.listener, shutdown.clone()),
        ));
        nodes.push((s.id, node));
    }

    let files = [
        ("ALPHA", "BETA", "po-1001.x12", purchase_order(1001)),
        ("ALPHA", "BETA", "po-1002 rush.x12", purchase_order(1002)),
        ("BETA", "ALPHA", "asn-3001.x12", ship_notice(3001)),
    ];
    println!("\nDropping files into the send folders, as an SFTP user would:");
    for (from, to, name, body) in &files {
        let node = &nodes.iter().find(|(id, _)| id == from).ok_or("no node")?.1;
        drop_file(&node.config.data_dir, from, to, name, body)?;
        println!(
            "  {from} -> {to}: {}{from}/{to}/{name} ({} bytes)",
            gateway::layout::SEND,
            body.len()
        );
    }

    println!("\nWatching the message logs:");
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut seen: Vec<(String, Status)> = Vec::new();
    let outbound = loop {
        let mut all = Vec::new();
        for (id, node) in &nodes {
            for r in node
                .gateway
                .ports
                .log
                .query(&gateway::ports::RecordQuery::of(None, None, 100))
                .await
                .map_err(|e| e.to_string())?
            {
                let key = format!("{id}:{}", r.id);
                if !seen.iter().any(|(k, st)| *k == key && *st == r.status) {
                    seen.retain(|(k, _)| *k != key);
                    seen.push((key, r.status));
                    let arrow = if r.direction == Direction::Outbox {
                        "->"
                    } else {
                        "<-"
                    };
                    println!(
                        "  {:>6.1}s  {:<5} {arrow} {:<5} {:<18} {:<22} {}",
                        started.elapsed().as_secs_f64(),
                        r.station,
                        r.partner,
                        r.filename,
                        r.status.as_str(),
                        r.last_detail().unwrap_or("")
                    );
                }
                all.push((*id, r));
            }
        }
        let out: Vec<(&str, MessageRecord)> = all
            .iter()
            .filter(|(_, r)| r.direction == Direction::Outbox)
            .cloned()
            .collect();
        if out.len() == files.len() && out.iter().all(|(_, r)| r.status.is_final()) {
            break out;
        }
        if Instant::now() > deadline {
            let _ = stop.send(true);
            return Err(format!(
                "not everything was delivered within {} s",
                args.timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    println!("\nWhere everything landed:");
    let mut ok = true;
    for (from, r) in &outbound {
        let to = &r.partner;
        let (_, peer) = nodes.iter().find(|(id, _)| id == to).ok_or("no peer")?;
        let inbound = peer
            .gateway
            .ports
            .log
            .query(&gateway::ports::RecordQuery::of(
                Some(to.as_str()),
                Some(from),
                100,
            ))
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|i| {
                i.direction == Direction::Inbox
                    && as2::envelope::message_id_core(&i.message_id)
                        == as2::envelope::message_id_core(&r.message_id)
            });
        let mdn = r.mdn.as_ref().map_or("no receipt".to_string(), |m| {
            format!(
                "{} receipt: {}, MIC {}",
                if m.signed { "signed" } else { "unsigned" },
                m.disposition,
                m.mic
            )
        });
        println!("  {from} -> {to}  {}  {}  ({mdn})", r.filename, r.status);
        println!(
            "      sent copy:   {}",
            peer_path(&nodes, from, r.payload_key.as_deref())
        );
        match inbound.and_then(|i| i.payload_key) {
            Some(k) => println!(
                "      received as: {}",
                peer_path(&nodes, to, Some(k.as_str()))
            ),
            None => println!("      received as: (not found)"),
        }
        ok &= r.status == Status::Delivered;
    }
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "\n{} in {:.1} s. Both gateways have stopped; their data stays in {}.",
        if ok {
            "All files delivered with verified receipts"
        } else {
            "Some files were NOT delivered"
        },
        started.elapsed().as_secs_f64(),
        base.display()
    );
    println!(
        "Look around: MFTG_CONFIG={}/alpha/mftg.toml mftg messages list",
        base.display()
    );
    let exe = std::env::current_exe()
        .ok()
        .map(|e| {
            let here = std::env::current_dir().unwrap_or_default();
            e.strip_prefix(&here).map(Path::to_path_buf).unwrap_or(e)
        })
        .map_or("mftg".to_string(), |e| e.display().to_string());
    println!(
        "See the exchanges in a browser: {exe} console -c {base}/alpha/mftg.toml\n  \
         then open http://127.0.0.1:8480/ and log in with the token in \
         {base}/alpha/data/.mftg/console.token\n  \
         (certificates show when {PASSWORD_ENV} was set for the demo and is set for the console)",
        base = base.display()
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn peer_path(nodes: &[(&str, Arc<Node>)], station: &str, key: Option<&str>) -> String {
    match (nodes.iter().find(|(id, _)| *id == station), key) {
        (Some((_, n)), Some(k)) => n.config.data_dir.join(k).display().to_string(),
        _ => "(none)".into(),
    }
}
