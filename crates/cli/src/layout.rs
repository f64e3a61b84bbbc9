//! `mftg layout`: the storage layout's folders, how long the lifecycle rules keep what is in
//! them, and the default duplicate window, as the gateway itself defines them. The template
//! checks read `--json` to compare the templates with the code.

use std::process::ExitCode;

use gateway::layout::{self, Retention};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON (for scripts and the template checks).
    #[arg(long)]
    json: bool,
}

fn retention(root: &str) -> Option<&'static Retention> {
    layout::RETENTION.iter().find(|r| r.root == root)
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let window = gateway::DEFAULT_DUPLICATE_WINDOW.as_secs();
    if a.json {
        let roots: Vec<_> = layout::ROOTS
            .iter()
            .map(|(root, what)| {
                serde_json::json!({
                    "root": root,
                    "holds": what,
                    "expires": retention(root).map(|r| serde_json::json!({
                        "current_days": r.current_days,
                        "noncurrent_days": r.noncurrent_days,
                    })),
                    "sftp": !layout::PRIVATE.contains(root),
                })
            })
            .collect();
        let out = serde_json::json!({
            "root": layout::ROOT,
            "roots": roots,
            "kept": layout::KEPT,
            "private": layout::PRIVATE,
            "incomplete_upload_days": layout::INCOMPLETE_UPLOAD_DAYS,
            "duplicate_window_seconds": window,
        });
        out!("{out:#}");
        return Ok(ExitCode::SUCCESS);
    }
    for (root, what) in layout::ROOTS {
        let kept = match retention(root) {
            Some(r) => format!(
                "noncurrent after {} days, deleted {} days later",
                r.current_days, r.noncurrent_days
            ),
            None => "kept until deleted".into(),
        };
        let sftp = if layout::PRIVATE.contains(&root) {
            "; not reachable over SFTP"
        } else {
            ""
        };
        out!("{root:<18} {what}\n{:<18} {kept}{sftp}", "");
    }
    out!(
        "\nIncomplete multipart uploads are aborted after {} days; same-name uploads within {} hours \
         (by default) of an accepted one are duplicates.",
        layout::INCOMPLETE_UPLOAD_DAYS,
        window as f64 / 3600.0
    );
    Ok(ExitCode::SUCCESS)
}
