//! The shipped systemd unit: `systemd-analyze verify` is clean and `systemd-analyze security`
//! rates its exposure 1.5 or lower. Skipped, with a note, where systemd-analyze is missing.
//!
//! `verify` checks that `ExecStart=` points at an executable; the binary is not installed on a
//! build machine, so the unit is verified inside a scratch root holding a stand-in
//! `/usr/bin/missedcalld`, `/bin/kill` and the system's own unit files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MAX_EXPOSURE: f64 = 1.5;

fn unit() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd/missedcalld.service")
}

fn analyze_available() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("note: systemd-analyze not found; systemd unit checks skipped");
    }
    found
}

#[test]
fn unit_has_the_required_settings() {
    let text = std::fs::read_to_string(unit()).expect("unit file");
    for line in [
        "ExecStart=/usr/bin/missedcalld run --config /etc/missedcalld/missedcalld.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=missedcalld",
        "StateDirectoryMode=0750",
        "UMask=0027",
        "User=missedcalld",
        "Group=missedcalld",
        "LoadCredential=ami-secret:/etc/missedcalld/ami-secret",
        "Restart=on-failure",
        "IPAddressDeny=any",
        // Remote webhooks and Telegram work out of the box; exposure stays at 1.0.
        "IPAddressAllow=any",
    ] {
        assert!(
            text.lines().any(|l| l.trim() == line),
            "missing `{line}` in the unit"
        );
    }
}

#[test]
fn security_exposure_is_low() {
    if !analyze_available() {
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit())
        .output()
        .expect("run systemd-analyze security");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line in:\n{text}"));
    let exposure: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure from {line:?}"));
    println!("systemd-analyze security: exposure {exposure}");
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{text}"
    );
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[test]
fn verify_is_clean() {
    if !analyze_available() {
        return;
    }
    let system_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists());
    let Some(system_units) = system_units else {
        eprintln!("note: no system unit directory with sysinit.target; verify skipped");
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/bin")).expect("mkdir");
    std::fs::create_dir_all(r.join("bin")).expect("mkdir");
    std::fs::create_dir_all(r.join("etc/systemd/system")).expect("mkdir");
    copy_dir(system_units, &r.join("usr/lib/systemd/system")).expect("copy system units");
    let stand_in = r.join("usr/bin/missedcalld");
    std::fs::write(&stand_in, "#!/bin/sh\n").expect("stand-in binary");
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::copy("/bin/kill", r.join("bin/kill")).expect("kill");
    std::fs::copy(unit(), r.join("etc/systemd/system/missedcalld.service")).expect("unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", r.display()))
        .arg("missedcalld.service")
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("missedcalld"))
        .collect();
    assert!(complaints.is_empty(), "verify complained:\n{stderr}");
}
