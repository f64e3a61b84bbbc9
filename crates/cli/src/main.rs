//! `mftg`: the AS2 gateway's command line.

mod capture;
mod demo;
mod inspect;
mod keyargs;

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
    /// Show what a captured AS2 message or MDN contains: layers, algorithms, signer, file, MIC.
    Inspect(Box<inspect::Args>),
    /// Run a complete AS2 exchange between two throw-away stations on this machine.
    Demo(demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(*a),
        Command::Demo(a) => demo::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mftg: {e}");
            ExitCode::from(2)
        }
    }
}
