//! `memectl history [--repo DIR] [--path DIR] [-n N] [-o table|json]`: the commits of `HEAD`
//! that changed the manifests folder, newest first (`git log -- PATH`). When the controller
//! answers, the row whose manifests it applies is marked `(applied)`, and the row of its tip
//! `(tip)` when that is a different one; without it the list is the same, unmarked.

use std::time::{Duration, UNIX_EPOCH};

use meme_api::status::ControllerStatus;
use meme_git::Commit;
use serde::Serialize;

use crate::age;
use crate::cli::{Global, Outcome, Output};
use crate::color::Color;
use crate::output;
use crate::render::{self, View};
use crate::repo::{self, Repo, RepoArgs};
use crate::table::Table;

/// Flags of `history`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Reads the repository alone. A commit whose manifests the controller applies is marked (applied)
and the controller's tip (tip) when it is another one: that needs the controller to answer, and
--path to be the folder it follows.")]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Show at most N commits.
    #[arg(short = 'n', long = "max-count", value_name = "N", default_value_t = 20)]
    max_count: usize,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Output,
}

/// One row, as `-o json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Full commit id.
    pub revision: String,
    /// Committer time, unix seconds.
    pub time: i64,
    /// Committer time, RFC 3339.
    pub date: String,
    /// Author name.
    pub author: String,
    /// First line of the message.
    pub subject: String,
    /// The controller applies the manifests of this commit.
    pub applied: bool,
    /// The controller's tip has the manifests of this commit (and it is not the applied one).
    pub tip: bool,
}

/// Where the controller stands, mapped onto the rows: the commit of the folder's history in
/// force at its applied revision and at its tip.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// The row applied.
    pub applied: Option<String>,
    /// The row at the tip.
    pub tip: Option<String>,
}

/// Runs `history`.
///
/// # Errors
/// Not a repository, no commits, git failed, or stdout is closed.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let repo = Repo::open(args.repo.repo.as_deref()).await?;
    let status = repo::controller_status(global).await;
    let path = repo.manifests_path(args.repo.path.as_deref(), status.as_ref())?;
    let commits = repo.log("HEAD", &path, args.max_count).await?;
    let (marks, notes) = match &status {
        Some(status) if follows(status, &path) => marks(&repo, status, &path, &commits).await,
        _ => (Marks::default(), Vec::new()),
    };
    let entries = entries(&commits, &marks);
    let text = match args.output {
        Output::Json => output::serialize(&entries, output::Format::Json)?.unwrap_or_default(),
        Output::Table if entries.is_empty() => {
            eprintln!("No commits change {} in the history of HEAD (is --path right?).", repo::pathspec(&path));
            String::new()
        }
        Output::Table => render(&entries, &View::live()),
    };
    output::print(&text)?;
    if args.output == Output::Table {
        for note in notes {
            eprintln!("note: {note}");
        }
    }
    Ok(Outcome::Success)
}

/// Whether the controller follows this folder (its marks mean something here).
fn follows(status: &ControllerStatus, path: &str) -> bool {
    repo::normalize_path(&status.source.path).is_ok_and(|p| p == path)
}

/// The rows to mark, and notes for marks that fall outside the rows shown.
async fn marks(repo: &Repo, status: &ControllerStatus, path: &str, commits: &[Commit]) -> (Marks, Vec<String>) {
    let mut marks = Marks::default();
    let mut notes = Vec::new();
    let shown = |id: &str| commits.iter().any(|c| c.id == id);
    let applied = status.applied.as_ref().map(|r| r.revision.as_str()).filter(|r| !r.is_empty());
    let tip = status.source.tip.as_ref().map(|r| r.revision.as_str()).filter(|r| !r.is_empty());
    for (what, revision) in [("applied", applied), ("tip", tip)] {
        let Some(revision) = revision else { continue };
        let row = match repo.last_change(revision, path).await {
            Ok(Some(commit)) => commit.id,
            Ok(None) => continue,
            Err(_) => {
                notes.push(format!(
                    "the controller's {what} revision {} is not in this repository (fetch?)",
                    repo::short(revision)
                ));
                continue;
            }
        };
        if !shown(&row) {
            notes.push(format!(
                "the controller's {what} revision {} has the manifests of {}, which is not listed",
                repo::short(revision),
                repo::short(&row)
            ));
        }
        match what {
            "applied" => marks.applied = Some(row),
            _ => marks.tip = Some(row),
        }
    }
    if marks.tip == marks.applied {
        marks.tip = None;
    }
    (marks, notes)
}

/// The rows with their marks.
#[must_use]
pub fn entries(commits: &[Commit], marks: &Marks) -> Vec<Entry> {
    commits
        .iter()
        .map(|c| Entry {
            revision: c.id.clone(),
            time: c.time,
            date: u64::try_from(c.time)
                .map(|t| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string())
                .unwrap_or_default(),
            author: c.author.clone(),
            subject: c.subject.clone(),
            applied: marks.applied.as_deref() == Some(&c.id),
            tip: marks.tip.as_deref() == Some(&c.id),
        })
        .collect()
}

/// `REVISION AGE AUTHOR MESSAGE`, the marks after the revision.
#[must_use]
pub fn render(entries: &[Entry], view: &View) -> String {
    let mut table = Table::new(["REVISION", "AGE", "AUTHOR", "MESSAGE"]);
    for e in entries {
        let mut revision = repo::short(&e.revision).to_owned();
        if e.applied {
            revision.push(' ');
            revision.push_str(&view.paint.paint("(applied)", Some(Color::Green)));
        }
        if e.tip {
            revision.push(' ');
            revision.push_str(&view.paint.paint("(tip)", Some(Color::Yellow)));
        }
        let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(e.time).unwrap_or(0));
        let age = if e.time == 0 { age::UNKNOWN.to_owned() } else { age::since(view.now, when) };
        table.row([revision, age, e.author.clone(), render::first_line(&e.subject)]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(id: char, time: i64, subject: &str) -> Commit {
        Commit { id: id.to_string().repeat(40), subject: subject.into(), author: "Jane".into(), time }
    }

    #[test]
    fn render_should_mark_the_applied_and_tip_rows() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let commits = [commit('b', 1_800_000_000 - 300, "web v2"), commit('a', 1_800_000_000 - 7200, "web v1")];
        let marks = Marks { applied: Some("a".repeat(40)), tip: Some("b".repeat(40)) };
        let entries = entries(&commits, &marks);
        assert!(entries[1].applied && entries[0].tip);
        assert_eq!(entries[0].date, "2027-01-15T07:55:00Z");
        assert_eq!(
            render(&entries, &View::plain(now)),
            "REVISION                 AGE    AUTHOR   MESSAGE\n\
             bbbbbbbbbbbb (tip)       5m     Jane     web v2\n\
             aaaaaaaaaaaa (applied)   120m   Jane     web v1\n"
        );
    }
}
