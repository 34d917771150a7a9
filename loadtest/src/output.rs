//! Where a report goes: its human summary to stdout (stderr when the JSON takes stdout), and
//! its JSON to a file, to stdout (`-`), or nowhere. Shared by every subcommand's report.

use serde::Serialize;
use std::io::Write;

/// Writes `summary` and the JSON of `report` as `json` asks.
pub fn emit<T: Serialize>(
    report: &T,
    json: Option<&str>,
    summary: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    if json == Some("-") {
        summary(&mut std::io::stderr())?;
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        summary(&mut std::io::stdout())?;
        if let Some(path) = json {
            std::fs::write(path, serde_json::to_string_pretty(report)? + "\n")?;
        }
    }
    Ok(())
}
