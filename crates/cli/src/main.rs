//! `mftg`: the AS2 gateway's command line.

/// `println!` that ends the program quietly when whoever read the output has gone
/// (`mftg messages list | head`) instead of panicking on the broken pipe.
macro_rules! out {
    ($($t:tt)*) => { $crate::print_line(format_args!($($t)*)) };
}

/// One line to standard output; exits with 0 if the reader is gone.
pub fn print_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

mod backend;
mod capture;
mod console;
mod demo;
mod doctor;
#[cfg(feature = "aws")]
mod infra;
mod inspect;
mod keyargs;
mod layout;
mod local;
mod named;
#[cfg(feature = "aws")]
mod sftp_access;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mftg", version, about = "AS2 gateway with SFTP integration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a starter configuration for one station.
    Init(Box<local::InitArgs>),
    /// Runs the gateway: the AS2 endpoint, the send-folder watcher and the sender.
    Serve(local::ServeArgs),
    /// Station keys and partner certificates (AS2/keystore/*.jks).
    Keys {
        #[command(subcommand)]
        command: local::KeysCommand,
    },
    /// Our AS2 identities (stations): in mftg.toml, or a deployment's partners table.
    Stations {
        #[command(subcommand)]
        command: local::StationsCommand,
    },
    /// Partnerships: in mftg.toml, or a deployment's partners table.
    Partners {
        #[command(subcommand)]
        command: local::PartnersCommand,
    },
    /// Drops a file into AS2/send/<from>/<to>/ for the running gateway to send.
    Send(local::SendArgs),
    /// The message log.
    Messages {
        #[command(subcommand)]
        command: local::MessagesCommand,
    },
    /// Jobs set aside (the dead-letter queue on AWS, parked jobs embedded): list, redrive.
    Queue {
        #[command(subcommand)]
        command: local::QueueCommand,
    },
    /// The operator console and REST API (/api/v1) over the gateway's data directory or an AWS
    /// deployment, on 127.0.0.1 by default.
    Console(console::Args),
    /// Shows what a captured AS2 message or MDN contains: layers, algorithms, signer, file, MIC.
    Inspect(Box<inspect::Args>),
    /// Two gateways on this machine exchange EDI files both ways (what `make run` runs).
    Demo(demo::Args),
    /// The storage layout: what each folder under AS2/ holds and how long it is kept.
    Layout(layout::Args),
    /// Checks the gateway's setup, one line per check (keys, certificates, database, endpoint);
    /// exits non-zero when one fails.
    Doctor(doctor::Args),
    /// Customers' SFTP users on AWS Transfer Family: enable, rotate, describe, disable.
    #[cfg(feature = "aws")]
    Sftp {
        #[command(subcommand)]
        command: sftp_access::SftpCommand,
    },
    /// What the deployment templates install, for buckets made outside them.
    #[cfg(feature = "aws")]
    Infra {
        #[command(subcommand)]
        command: infra::InfraCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    // The AWS SDK's credential chain warns of every provider it tried (instance metadata on a
    // workstation); the command says itself, in one line, when no credentials were found.
    let default = format!("{default},aws_config=error");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Init(a) => local::init(*a),
        Command::Serve(a) => local::serve(a),
        Command::Keys { command } => local::keys(command),
        Command::Stations { command } => local::stations(command),
        Command::Partners { command } => local::partners(command),
        Command::Send(a) => local::send(a),
        Command::Messages { command } => local::messages(command),
        Command::Queue { command } => local::queue(command),
        Command::Console(a) => console::run(a),
        Command::Inspect(a) => inspect::run(*a),
        Command::Demo(a) => demo::run(a),
        Command::Layout(a) => layout::run(a),
        Command::Doctor(a) => doctor::run(a),
        #[cfg(feature = "aws")]
        Command::Sftp { command } => sftp_access::run(command),
        #[cfg(feature = "aws")]
        Command::Infra { command } => infra::run(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mftg: {e}");
            ExitCode::from(2)
        }
    }
}
