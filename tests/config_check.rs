//! Every shipped configuration passes `check-config`, and every file in `tests/config/invalid/`
//! fails with an error naming the field from its `# expect: <field>` line, both through the
//! library and through the compiled binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use missedcalld::config::Config;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// Shipped examples and `tests/config/valid/*`.
fn valid_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("examples/missedcalld.toml")];
    files.extend(toml_files(&root().join("tests/config/valid")));
    files
}

fn expected_field(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("readable test file");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("# expect:"))
        .map(|f| f.trim().to_string())
        .unwrap_or_else(|| panic!("{} has no `# expect: <field>` line", path.display()))
}

fn check_config(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_missedcalld"))
        .args(["check-config", "--config"])
        .arg(path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("RUST_LOG")
        .output()
        .expect("run missedcalld")
}

#[test]
fn there_are_enough_cases() {
    assert!(valid_files().len() >= 4);
    assert!(toml_files(&root().join("tests/config/invalid")).len() >= 8);
}

#[test]
fn valid_files_load() {
    for f in valid_files() {
        if let Err(e) = Config::load(&f) {
            panic!("{}: {e}", f.display());
        }
    }
}

#[test]
fn invalid_files_name_their_field() {
    for f in toml_files(&root().join("tests/config/invalid")) {
        let field = expected_field(&f);
        match Config::load(&f) {
            Ok(_) => panic!("{} loaded but should fail on {field}", f.display()),
            Err(e) => assert_eq!(e.field(), Some(field.as_str()), "{}: {e}", f.display()),
        }
    }
}

#[test]
fn binary_accepts_valid_files() {
    for f in valid_files() {
        let out = check_config(&f);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {:?}\n{stdout}{}",
            f.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some(format!("OK: {}", f.display()).as_str()));
        let summary = lines.next().unwrap_or_default();
        assert!(summary.contains("store "), "{summary}");
    }
}

#[test]
fn binary_rejects_invalid_files_naming_the_field() {
    for f in toml_files(&root().join("tests/config/invalid")) {
        let field = expected_field(&f);
        let out = check_config(&f);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", f.display());
        assert!(
            stderr.contains(&format!("{field}: ")),
            "{}: expected the field {field} in: {stderr}",
            f.display()
        );
        assert!(out.stdout.is_empty(), "{}", f.display());
    }
}

#[test]
fn binary_never_prints_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("c.toml");
    std::fs::write(&f, "[ami]\nsecret = \"hunter2-very-secret\"\nport = 0\n").expect("write");
    let bad = check_config(&f);
    std::fs::write(&f, "[ami]\nsecret = \"hunter2-very-secret\"\n").expect("write");
    let good = check_config(&f);
    assert!(good.status.success());
    for out in [bad, good] {
        let all = [out.stdout, out.stderr].concat();
        let text = String::from_utf8_lossy(&all);
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn binary_never_prints_a_secret_of_another_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("c.toml");
    for value in ["918273645", "918273645.5", "[918273645]", "918273645 x"] {
        std::fs::write(&f, format!("[ami]\nsecret = {value}\n")).expect("write");
        let out = check_config(&f);
        let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
        assert_eq!(out.status.code(), Some(1), "{value}: {text}");
        assert!(text.contains("ami.secret: "), "{value}: {text}");
        assert!(!text.contains("918273645"), "{value}: {text}");
    }
}

/// `run` with `config` and `RUST_LOG`: must exit by itself (it is expected to refuse to start).
fn run_briefly(config: &Path, rust_log: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_missedcalld"));
    cmd.args(["run", "--config"])
        .arg(config)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    let mut child = cmd.spawn().expect("run missedcalld");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("`run` kept running with a bad log setting");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn run_refuses_a_log_level_typo_and_a_bad_rust_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite");
    let f = dir.path().join("c.toml");
    // Port 1 on 127.0.0.1: nothing listens; the daemon must not get as far as connecting.
    let base = format!("[ami]\nport = 1\nsecret = \"x\"\n[store]\npath = {db:?}\n");
    std::fs::write(&f, format!("{base}[log]\nlevel = \"warning\"\n")).expect("write");
    let out = run_briefly(&f, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("log.level: "), "{stderr}");
    assert!(stderr.contains("\"warning\""), "{stderr}");

    std::fs::write(&f, format!("{base}[log]\nlevel = \"info\"\n")).expect("write");
    for bad in ["infoo", "info,missedcalld=verbose", "info,[[["] {
        let out = run_briefly(&f, Some(bad));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "RUST_LOG={bad}: {stderr}");
        assert!(stderr.contains("RUST_LOG: "), "RUST_LOG={bad}: {stderr}");
    }
    assert!(
        !db.exists(),
        "nothing is opened before the log settings are valid"
    );
}

#[test]
fn credential_directory_supplies_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ami-secret"), "from-credential\n").expect("write");
    let f = root().join("tests/config/valid/systemd-credential.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_missedcalld"))
        .args(["check-config", "--config"])
        .arg(&f)
        .env("CREDENTIALS_DIRECTORY", dir.path())
        .output()
        .expect("run missedcalld");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("secret from credential"), "{stdout}");
    assert!(!stdout.contains("from-credential"), "{stdout}");
}
