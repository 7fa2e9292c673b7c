//! `hack/install.sh` in a throwaway root (`DESTDIR` with its own `/etc/passwd`, so the `meme`
//! user is created there, never on this host): every file with its mode and owner, the unit
//! passes `systemd-analyze verify` and keeps its hardening, a re-run (an upgrade) keeps settings
//! and secrets, `--uninstall` keeps them too, `--purge` removes them and the user.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use meme_e2e::{binary, run, workspace};

/// A throwaway root with the account files `useradd --prefix` edits, and a docker group.
fn throwaway_root() -> tempfile::TempDir {
    let root = tempfile::Builder::new().prefix("meme-install-").tempdir().expect("temp dir");
    let etc = root.path().join("etc");
    std::fs::create_dir_all(&etc).expect("etc");
    for (name, content) in [
        ("passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        ("group", "root:x:0:\ndocker:x:990:\n"),
        ("shadow", "root:*:19000:0:99999:7:::\n"),
        ("gshadow", "root:*::\ndocker:!::\n"),
    ] {
        std::fs::write(etc.join(name), content).expect("account file");
    }
    root
}

fn install(root: &Path, args: &[&str]) -> String {
    let from = binary("meme-controller").parent().expect("binary dir").to_path_buf();
    run(Command::new(workspace().join("hack/install.sh")).env("DESTDIR", root).arg("--from").arg(from).args(args))
}

/// Every path under `root` but the seeded account files: (octal mode, uid, gid).
fn tree(root: &Path) -> BTreeMap<String, (u32, u32, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, u32, u32)>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
            let seeded = ["passwd", "group", "shadow", "gshadow"]
                .iter()
                .any(|f| rel == format!("etc/{f}") || rel == format!("etc/{f}-"));
            if !seeded {
                out.insert(rel, (meta.permissions().mode() & 0o7777, meta.uid(), meta.gid()));
            }
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The line of `etc/<file>` for `name`, if any.
fn account(root: &Path, file: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join("etc").join(file)).expect("account file");
    text.lines().find(|l| l.split(':').next() == Some(name)).map(str::to_owned)
}

fn id_of(root: &Path, file: &str, name: &str) -> u32 {
    account(root, file, name).and_then(|l| l.split(':').nth(2)?.parse().ok()).expect("numeric id")
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `systemd-analyze verify` on the installed unit (its ExecStart pointed into the throwaway root,
/// since verify checks the binary exists) must print nothing: unknown keys are only warnings.
/// `security --offline` must keep the exposure at 2.0 or below (its threshold counts tenths).
fn verify_unit(root: &Path) {
    let unit = read(root, "etc/systemd/system/meme-controller.service");
    let dir = tempfile::tempdir().expect("temp dir");
    let copy: PathBuf = dir.path().join("meme-controller.service");
    let exec = format!("ExecStart={}/", root.display());
    std::fs::write(&copy, unit.replace("ExecStart=/", &exec)).expect("unit copy");
    let out = Command::new("systemd-analyze").arg("verify").arg(&copy).output().expect("run systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&copy)
        .output()
        .expect("run systemd-analyze security");
    assert!(out.status.success(), "exposure above 2.0:\n{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn install_should_lay_out_every_file_with_its_mode_and_keep_secrets_across_upgrade_and_uninstall() {
    let dir = throwaway_root();
    let root = dir.path();
    let said = install(root, &[]);
    assert!(said.contains("created the system user meme"), "{said}");

    let meme = id_of(root, "passwd", "meme");
    let meme_group = id_of(root, "group", "meme");
    assert!(meme > 0 && meme < 1000, "a system user: {meme}");
    let passwd = account(root, "passwd", "meme").expect("meme in passwd");
    assert!(passwd.ends_with(":/var/lib/meme-controller:/usr/sbin/nologin"), "{passwd}");
    let docker = account(root, "group", "docker").expect("docker group");
    assert!(docker.ends_with(":meme"), "meme is in the docker group: {docker}");

    let expected: BTreeMap<String, (u32, u32, u32)> = [
        ("etc", 0o755, 0, 0),
        ("etc/meme-controller", 0o750, 0, meme_group),
        ("etc/meme-controller/meme-controller.env", 0o640, 0, meme_group),
        ("etc/meme-controller/secrets", 0o700, meme, meme_group),
        ("etc/meme-controller/ssh", 0o700, meme, meme_group),
        ("etc/meme-controller/token", 0o600, meme, meme_group),
        ("etc/meme-controller/webhook-secret", 0o600, meme, meme_group),
        ("etc/systemd", 0o755, 0, 0),
        ("etc/systemd/system", 0o755, 0, 0),
        ("etc/systemd/system/meme-controller.service", 0o644, 0, 0),
        ("usr", 0o755, 0, 0),
        ("usr/local", 0o755, 0, 0),
        ("usr/local/bin", 0o755, 0, 0),
        ("usr/local/bin/meme-controller", 0o755, 0, 0),
        ("usr/local/bin/memectl", 0o755, 0, 0),
        ("usr/local/share", 0o755, 0, 0),
        ("usr/local/share/bash-completion", 0o755, 0, 0),
        ("usr/local/share/bash-completion/completions", 0o755, 0, 0),
        ("usr/local/share/bash-completion/completions/memectl", 0o644, 0, 0),
        ("var", 0o755, 0, 0),
        ("var/lib", 0o755, 0, 0),
        ("var/lib/meme-controller", 0o750, meme, meme_group),
    ]
    .into_iter()
    .map(|(p, m, u, g)| (p.to_owned(), (m, u, g)))
    .collect();
    assert_eq!(tree(root), expected, "files, modes and owners (uid, gid) under the throwaway root");

    // The binaries are the ones given, and run.
    for bin in ["meme-controller", "memectl"] {
        let installed = std::fs::read(root.join("usr/local/bin").join(bin)).expect("installed binary");
        assert!(installed == std::fs::read(binary(bin)).expect("source binary"), "{bin} differs from its source");
        let version = run(Command::new(root.join("usr/local/bin").join(bin)).arg("--version"));
        assert!(version.starts_with(&format!("{bin} ")) && version.contains("(commit "), "{version}");
    }
    assert!(read(root, "usr/local/share/bash-completion/completions/memectl").contains("_memectl"));

    // Secrets: random, 32 bytes in hex, distinct.
    let token = read(root, "etc/meme-controller/token");
    let hook = read(root, "etc/meme-controller/webhook-secret");
    for secret in [&token, &hook] {
        assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret:?}");
    }
    assert_ne!(token, hook);
    assert_eq!(
        read(root, "etc/meme-controller/meme-controller.env"),
        read(&workspace(), "controller/dist/meme-controller.env")
    );

    let unit = read(root, "etc/systemd/system/meme-controller.service");
    for line in ["ExecStart=/usr/local/bin/meme-controller", "User=meme", "Group=meme", "SupplementaryGroups=docker"] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    assert!(!["@BINDIR@", "@USER@", "@GROUP@"].iter().any(|p| unit.contains(p)), "a placeholder is left in the unit");
    verify_unit(root);

    // An upgrade: binaries and unit again, settings and secrets untouched, the user not re-made.
    let env_file = root.join("etc/meme-controller/meme-controller.env");
    let edited = format!("{}MEME_REMOTE=origin\n", read(root, "etc/meme-controller/meme-controller.env"));
    std::fs::write(&env_file, &edited).expect("edit the env file");
    std::fs::write(root.join("etc/meme-controller/secrets/marker"), "kept").expect("a secret");
    let said = install(root, &[]);
    assert!(!said.contains("created the system user") && !said.contains("generated"), "{said}");
    assert_eq!(read(root, "etc/meme-controller/meme-controller.env"), edited);
    assert_eq!(read(root, "etc/meme-controller/token"), token);
    assert_eq!(read(root, "etc/meme-controller/webhook-secret"), hook);
    let passwd = read(root, "etc/passwd");
    assert_eq!(passwd.lines().filter(|l| l.starts_with("meme:")).count(), 1, "{passwd}");

    // Uninstall keeps settings, secrets, state and the user.
    install(root, &["--uninstall"]);
    for gone in [
        "usr/local/bin/meme-controller",
        "usr/local/bin/memectl",
        "usr/local/share/bash-completion/completions/memectl",
        "etc/systemd/system/meme-controller.service",
    ] {
        assert!(!root.join(gone).exists(), "{gone} is still there after --uninstall");
    }
    for kept in ["etc/meme-controller/token", "etc/meme-controller/secrets/marker", "var/lib/meme-controller"] {
        assert!(root.join(kept).exists(), "{kept} was removed by --uninstall without --purge");
    }
    assert!(account(root, "passwd", "meme").is_some());

    // --purge removes them and the user.
    install(root, &["--uninstall", "--purge"]);
    assert!(!root.join("etc/meme-controller").exists() && !root.join("var/lib/meme-controller").exists());
    assert!(account(root, "passwd", "meme").is_none(), "the user is removed by --purge");
}

#[test]
fn install_as_root_with_a_prefix_should_need_no_docker_group() {
    let dir = throwaway_root();
    let root = dir.path();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").expect("no docker group");
    install(root, &["--user", "root", "--prefix", "/opt/meme"]);
    assert!(account(root, "passwd", "meme").is_none());
    let unit = read(root, "etc/systemd/system/meme-controller.service");
    assert!(unit.lines().any(|l| l == "ExecStart=/opt/meme/bin/meme-controller"), "{unit}");
    assert!(unit.lines().any(|l| l == "User=root"));
    assert!(!unit.contains("SupplementaryGroups"), "root needs no docker group (it may not exist)");
    verify_unit(root);
    for (rel, mode) in [("etc/meme-controller/token", 0o600), ("etc/meme-controller/secrets", 0o700)] {
        let meta = std::fs::metadata(root.join(rel)).expect(rel);
        assert_eq!((meta.permissions().mode() & 0o7777, meta.uid(), meta.gid()), (mode, 0, 0), "{rel}");
    }

    // Without root and without a docker group, it refuses and says why.
    let other = throwaway_root();
    std::fs::write(other.path().join("etc/group"), "root:x:0:\n").expect("no docker group");
    let from = binary("meme-controller").parent().expect("binary dir").to_path_buf();
    let out = Command::new(workspace().join("hack/install.sh"))
        .env("DESTDIR", other.path())
        .arg("--from")
        .arg(from)
        .output()
        .expect("run install.sh");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no docker group"));
}
