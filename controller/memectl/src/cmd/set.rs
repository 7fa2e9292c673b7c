//! `memectl set image SERVICE=IMAGE... [--commit [--push] [--message M]]`: the CI step after an
//! image build. It rewrites the `image:` value of each named Deployment in place — only those
//! bytes: comments, quoting, flow or block style, key order and the other documents of a file stay
//! as they were — using the loader's position index ([`meme_api::position::PathIndex`]) to find
//! the value. The result must load and validate, and must differ from the manifests before only
//! in those images; otherwise nothing is written.
//!
//! With `--commit` (refused on a dirty tree) it commits the edited files with a message naming
//! the services and images, `--push` pushes the branch, and stdout is the new commit id alone,
//! so that the next CI step is `memectl wait --for synced --revision <id>`. Everything for humans
//! goes to stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use meme_api::ManifestTree;
use meme_api::reference::ImageReference;

use crate::cli::{CheckError, Global, Outcome};
use crate::commit;
use crate::output;
use crate::repo::{self, Repo, RepoArgs};

/// Flags of `set`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Set the image of Deployments in the manifests, in place (only the image values change),
    /// optionally committing and pushing the change.
    Image(ImageArgs),
}

/// Flags of `set image`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Only the bytes of each image value change: comments, quoting, flow or block style, key order and
the other documents of a file stay byte for byte. The edited manifests must validate, and an
image that is already set is left alone (with --commit and nothing to change, stdout is the
current HEAD). Reports go to stderr; with --commit, stdout is the new commit id alone:

  rev=$(memectl set image backend=ghcr.io/org/backend:$SHA worker=ghcr.io/org/worker:$SHA \\
        --commit --push)
  memectl wait --for synced --revision \"$rev\"")]
pub struct ImageArgs {
    /// The Deployments and their new images, e.g. backend=ghcr.io/org/backend:1f2e3d4.
    #[arg(value_name = "SERVICE=IMAGE", required = true, value_parser = parse_pair)]
    images: Vec<(String, String)>,
    #[command(flatten)]
    repo: RepoArgs,
    /// Commit the edited files (refused when the work tree has uncommitted changes).
    #[arg(long)]
    commit: bool,
    /// Push the branch after committing (`git push REMOTE HEAD`).
    #[arg(long, requires = "commit")]
    push: bool,
    /// The remote to push to (default: the branch's upstream remote, else `origin`).
    #[arg(long, value_name = "NAME", requires = "push")]
    remote: Option<String>,
    /// The commit subject (default: `set image SERVICE=IMAGE, ...`); the body always lists
    /// every change.
    #[arg(short, long, value_name = "M", requires = "commit")]
    message: Option<String>,
}

/// `SERVICE=IMAGE`, both non-empty.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((service, image)) if !service.is_empty() && !image.is_empty() => {
            Ok((service.to_owned(), image.to_owned()))
        }
        _ => Err(format!("expected SERVICE=IMAGE, got {text:?}")),
    }
}

/// One image value rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The Deployment.
    pub service: String,
    /// Its file, relative to the manifests folder.
    pub file: String,
    /// `file:line:col` of the value, as diagnostics show it.
    pub location: String,
    /// The image before.
    pub old: String,
    /// The image after.
    pub new: String,
}

/// What [`set_images`] did: the tree with the edited files, and every image that changed (an
/// image already set is not a change).
#[derive(Debug)]
pub struct Edited {
    /// The whole tree, edited.
    pub tree: ManifestTree,
    /// The changes, in argument order.
    pub changes: Vec<Change>,
}

impl Edited {
    /// The files that changed, relative to the folder.
    #[must_use]
    pub fn files(&self) -> BTreeSet<&str> {
        self.changes.iter().map(|c| c.file.as_str()).collect()
    }
}

/// How an image value is written, and so how the new one must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Plain,
    DoubleQuoted,
    SingleQuoted,
}

/// Sets the images of `wanted` (service → image) in `tree`, touching only the bytes of each
/// `spec.image` value. Pure: the caller writes the files.
///
/// # Errors
/// A [`CheckError`] (exit 1) for an invalid image reference, an unknown service, manifests that
/// are invalid before or would be after, an image not written as a plain or quoted scalar
/// (an alias, a tag, a block scalar), or an edit that would change anything but the images.
pub fn set_images(tree: &ManifestTree, wanted: &[(String, String)]) -> anyhow::Result<Edited> {
    let mut seen = BTreeSet::new();
    for (service, image) in wanted {
        if !seen.insert(service.as_str()) {
            return Err(CheckError(format!("{service} is given twice")).into());
        }
        ImageReference::parse(image)
            .map_err(|why| CheckError(format!("invalid image reference {image:?} for {service}: {why}")))?;
    }
    let before = meme_api::load(tree).map_err(|diagnostics| {
        eprint!("{diagnostics}");
        CheckError(format!(
            "the manifests in {} are invalid ({} error(s) above); fix them before setting images",
            tree.root,
            diagnostics.error_count()
        ))
    })?;
    let known: Vec<&str> = before.deployments.iter().map(|d| d.object.metadata.name.as_str()).collect();
    let mut changes = Vec::new();
    // Per file: (start, end, replacement), applied from the end so offsets stay valid.
    let mut edits: BTreeMap<String, Vec<(usize, usize, String)>> = BTreeMap::new();
    for (service, image) in wanted {
        let Some(located) = before.deployments.iter().find(|d| d.object.metadata.name == *service) else {
            return Err(CheckError(format!(
                "no Deployment named {service} in {} (there are: {})",
                tree.root,
                known.join(", ")
            ))
            .into());
        };
        let source = &located.source;
        let pos = source.index.value_pos("spec.image").unwrap_or(source.start);
        let location = format!("{}:{}:{}", source.display, pos.line, pos.column);
        let old = &located.object.spec.image;
        if old == image {
            continue;
        }
        let text = tree.files.get(&source.file).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default();
        let span = source.index.value_span("spec.image").filter(|(s, e)| s < e && *e <= text.len());
        let Some((start, end)) = span else {
            return Err(CheckError(format!("{location}: cannot find the image value of {service} to edit")).into());
        };
        let written = &text[start..end];
        let style = style_of(written, old).ok_or_else(|| {
            CheckError(format!(
                "{location}: the image of {service} is written as {written:?}, not as a plain or quoted scalar \
                 (an alias, anchor, tag or block scalar): edit it by hand"
            ))
        })?;
        let replacement = match style {
            Style::Plain => image.clone(),
            Style::DoubleQuoted => format!("\"{image}\""),
            Style::SingleQuoted => format!("'{image}'"),
        };
        edits.entry(source.file.clone()).or_default().push((start, end, replacement));
        changes.push(Change {
            service: service.clone(),
            file: source.file.clone(),
            location,
            old: old.clone(),
            new: image.clone(),
        });
    }
    let mut edited = tree.clone();
    for (file, mut spans) in edits {
        spans.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
        let mut text = String::from_utf8(tree.files[&file].to_vec()).context("manifest is not UTF-8")?;
        for (start, end, replacement) in spans {
            text.replace_range(start..end, &replacement);
        }
        edited.files.insert(file, text.into_bytes().into());
    }
    if !changes.is_empty() {
        check_only_images_changed(&before, &edited, &changes)?;
    }
    Ok(Edited { tree: edited, changes })
}

/// The style of a written image value, when it is a plain or quoted scalar whose content is
/// exactly `image` (no escapes: a valid reference needs none).
fn style_of(written: &str, image: &str) -> Option<Style> {
    let (style, inner) = if let Some(inner) = written.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        (Style::DoubleQuoted, inner)
    } else if let Some(inner) = written.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) {
        (Style::SingleQuoted, inner)
    } else {
        (Style::Plain, written)
    };
    (inner == image).then_some(style)
}

/// Loads the edited tree and compares it with `before`: the same Stack and Deployments, equal in
/// everything but the images of `changes`. Anything else means the edit went wrong, and nothing
/// is written.
fn check_only_images_changed(
    before: &meme_api::ManifestSet,
    edited: &ManifestTree,
    changes: &[Change],
) -> anyhow::Result<()> {
    let after = meme_api::load(edited).map_err(|diagnostics| {
        eprint!("{diagnostics}");
        CheckError(format!(
            "with the new images the manifests in {} would be invalid ({} error(s) above); nothing was changed",
            edited.root,
            diagnostics.error_count()
        ))
    })?;
    let unexpected = |what: String| {
        CheckError(format!("the in-place edit would change more than the images ({what}); nothing was changed"))
    };
    if after.stack.object != before.stack.object {
        return Err(unexpected("the Stack".into()).into());
    }
    let names = |set: &meme_api::ManifestSet| -> Vec<String> {
        set.deployments.iter().map(|d| d.object.metadata.name.clone()).collect()
    };
    if names(&after) != names(before) {
        return Err(unexpected("the set of Deployments".into()).into());
    }
    for (old, new) in before.deployments.iter().zip(&after.deployments) {
        let mut expected = old.object.clone();
        if let Some(change) = changes.iter().find(|c| c.service == expected.metadata.name) {
            expected.spec.image.clone_from(&change.new);
        }
        if new.object != expected {
            return Err(unexpected(format!("Deployment {}", expected.metadata.name)).into());
        }
    }
    Ok(())
}

/// The commit message: `subject` (default `set image a=x, b=y`), then one line per change.
#[must_use]
pub fn commit_message(changes: &[Change], subject: Option<&str>) -> String {
    let default = || {
        let pairs: Vec<String> = changes.iter().map(|c| format!("{}={}", c.service, c.new)).collect();
        format!("set image {}", pairs.join(", "))
    };
    let mut message = subject.map_or_else(default, str::to_owned);
    message.push_str("\n\n");
    for c in changes {
        let _ = writeln!(message, "{}: {} -> {}", c.service, c.old, c.new);
    }
    message
}

/// Runs `set`.
///
/// # Errors
/// A refusal (exit 1: unknown service, invalid reference, invalid result, dirty tree) or a
/// failure (exit 2: not a checkout, unreadable files, git failed, the push failed).
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    match &args.what {
        What::Image(args) => image(args, global).await,
    }
}

async fn image(args: &ImageArgs, global: &Global) -> anyhow::Result<Outcome> {
    let repo = Repo::open(args.repo.repo.as_deref()).await?;
    anyhow::ensure!(repo.work_tree, "{} has no work tree: set image edits files in a checkout", repo.root.display());
    let status = match args.repo.path {
        Some(_) => None,
        None => repo::controller_status(global).await,
    };
    let path = repo.manifests_path(args.repo.path.as_deref(), status.as_ref())?;
    let refusing = "set the image";
    if args.commit {
        commit::preflight(&repo, refusing).await?;
    }
    let push = if args.push { Some(commit::push_target(&repo, args.remote.as_deref(), refusing).await?) } else { None };
    let shown = repo::pathspec(&path);
    let dir = repo.root.join(&path);
    let mut tree = ManifestTree::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
    shown.clone_into(&mut tree.root);

    let edited = set_images(&tree, &args.images)?;
    for (service, image) in &args.images {
        match edited.changes.iter().find(|c| c.service == *service) {
            Some(c) => eprintln!("{}: {} -> {} ({})", c.service, c.old, c.new, c.location),
            None => eprintln!("{service}: already {image}"),
        }
    }
    if edited.changes.is_empty() {
        eprintln!("nothing to change");
        if args.commit {
            output::print(&format!("{}\n", repo.resolve("HEAD").await?))?;
        }
        return Ok(Outcome::Success);
    }
    let files: Vec<&str> = edited.files().into_iter().collect();
    for file in &files {
        write_in_place(&dir.join(file), &edited.tree.files[*file])?;
    }
    if !args.commit {
        eprintln!("edited {} (not committed; --commit commits them)", files.join(", "));
        return Ok(Outcome::Success);
    }
    let paths: Vec<String> =
        files.iter().map(|f| if path.is_empty() { (*f).to_owned() } else { format!("{path}/{f}") }).collect();
    let message = commit_message(&edited.changes, args.message.as_deref());
    let mut cmd = commit::identity(&repo).await?;
    cmd.extend(["commit", "-q", "-m", &message, "--"].map(str::to_owned));
    cmd.extend(paths.iter().cloned());
    if let Err(e) = repo.git.run(&cmd).await {
        // The tree was clean: putting the files back undoes exactly what this command did.
        let mut restore = vec!["checkout".to_owned(), "--".to_owned()];
        restore.extend(paths);
        let _ = repo.git.run(&restore).await;
        return Err(e.context("cannot commit the new images (the files were put back)"));
    }
    let id = repo.resolve("HEAD").await?;
    let branch = repo.reader.current_branch().await?.unwrap_or_else(|| "detached HEAD".to_owned());
    eprintln!("committed {} on {branch}", repo::short(&id));
    if let Some((remote, branch)) = push {
        repo.git.push(&remote, "HEAD").await.with_context(|| {
            format!("the new images are committed as {} on {branch}, but were not pushed", repo::short(&id))
        })?;
        eprintln!("pushed {branch} to {remote}");
    }
    output::print(&format!("{id}\n"))?;
    Ok(Outcome::Success)
}

/// Replaces a file's content through a temporary file in the same folder and a rename, keeping
/// its permissions: a reader (the controller, an editor) never sees half a file.
fn write_in_place(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let permissions = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.permissions();
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.memectl-{}", std::process::id()));
    let written = std::fs::write(&tmp, content)
        .and_then(|()| std::fs::set_permissions(&tmp, permissions))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_pair_should_split_at_the_first_equals_sign() {
        assert_eq!(parse_pair("web=reg.io/a/web:1").unwrap(), ("web".into(), "reg.io/a/web:1".into()));
        assert!(parse_pair("web").is_err());
        assert!(parse_pair("=x").is_err());
        assert!(parse_pair("web=").is_err());
    }

    #[test]
    fn style_of_should_accept_plain_and_quoted_scalars_only() {
        assert_eq!(style_of("web:1", "web:1"), Some(Style::Plain));
        assert_eq!(style_of("\"web:1\"", "web:1"), Some(Style::DoubleQuoted));
        assert_eq!(style_of("'web:1'", "web:1"), Some(Style::SingleQuoted));
        assert_eq!(style_of("*img", "web:1"), None);
        assert_eq!(style_of("!!str web:1", "web:1"), None);
        assert_eq!(style_of("\"web\\x3a1\"", "web:1"), None);
    }

    #[test]
    fn commit_message_should_name_services_and_images() {
        let change = |s: &str, old: &str, new: &str| Change {
            service: s.into(),
            file: "f.yaml".into(),
            location: "f.yaml:1:1".into(),
            old: old.into(),
            new: new.into(),
        };
        let changes = [change("backend", "b:1", "b:2"), change("worker", "w:1", "w:2")];
        assert_eq!(
            commit_message(&changes, None),
            "set image backend=b:2, worker=w:2\n\nbackend: b:1 -> b:2\nworker: w:1 -> w:2\n"
        );
        assert!(commit_message(&changes, Some("deploy abc")).starts_with("deploy abc\n\nbackend: b:1 -> b:2\n"));
    }
}
