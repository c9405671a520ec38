//! The files that install ward's configuration and service, checked in the ordinary test
//! run (the full package check, `scripts/package.sh --check`, needs a release build):
//! the systemd unit verifies, it reads the config where ward-config looks for it, and
//! every file the .deb metadata names exists.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn unit() -> String {
    std::fs::read_to_string(repo("contrib/ward.service")).unwrap()
}

/// `systemd-analyze verify` (when installed) against a scratch root holding the unit, a
/// stand-in /usr/bin/ward and the host's units: no output at all.
#[test]
fn unit_verifies() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: unit not verified");
        return;
    };
    assert!(out.status.success());
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd/system")).unwrap();
    let ward = r.join("usr/bin/ward");
    std::fs::write(&ward, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ward, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The targets the unit orders itself after.
    for t in [
        "local-fs.target",
        "network-online.target",
        "multi-user.target",
        "sysinit.target",
        "basic.target",
        "shutdown.target",
    ] {
        let host = Path::new("/usr/lib/systemd/system").join(t);
        let text = std::fs::read_to_string(&host).unwrap_or_else(|_| "[Unit]\n".into());
        std::fs::write(r.join("usr/lib/systemd/system").join(t), text).unwrap();
    }
    std::fs::write(r.join("usr/lib/systemd/system/ward.service"), unit()).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", r.display()))
        .arg("/usr/lib/systemd/system/ward.service")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}

#[test]
fn unit_reads_the_default_config_and_is_hardened() {
    let u = unit();
    let exec = u
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    assert!(
        exec.contains(&format!("--config {}", ward_config::DEFAULT_PATH)),
        "{exec}"
    );
    for needed in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "StateDirectory=ward",
    ] {
        assert!(u.lines().any(|l| l == needed), "{needed} missing");
    }
    let caps: Vec<&str> = u
        .lines()
        .filter_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .flat_map(str::split_whitespace)
        .collect();
    for cap in [
        "CAP_SYS_ADMIN",
        "CAP_KILL",
        "CAP_SYS_PTRACE",
        "CAP_DAC_READ_SEARCH",
        "CAP_NET_ADMIN",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_CHOWN",
        "CAP_FOWNER",
        "CAP_DAC_OVERRIDE",
    ] {
        assert!(caps.contains(&cap), "{cap} missing from the bounding set");
    }
}

/// Every source file of `[package.metadata.deb]` that is in the repository exists (the
/// generated man pages and completions and the release binary are made by package.sh).
#[test]
fn deb_assets_exist() {
    let manifest: toml::Table = std::fs::read_to_string(repo("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().expect("assets");
    assert!(assets.len() >= 8);
    let mut conffile_source = None;
    for a in assets {
        let a = a.as_array().expect("[source, dest, mode]");
        let (src, dest) = (a[0].as_str().unwrap(), a[1].as_str().unwrap());
        if dest == "etc/ward/ward.toml" {
            conffile_source = Some(src.to_string());
        }
        if src.starts_with("target/") {
            continue;
        }
        assert!(repo(src).is_file(), "{src} (-> {dest}) does not exist");
    }
    // The shipped /etc/ward/ward.toml is valid and the defaults.
    let src = conffile_source.expect("an asset installs /etc/ward/ward.toml");
    let text = std::fs::read_to_string(repo(&src)).unwrap();
    assert_eq!(
        ward_config::parse(&text, Path::new(&src)).unwrap(),
        ward_config::Config::default()
    );
    let scripts = deb["maintainer-scripts"].as_str().unwrap();
    let postinst = std::fs::read_to_string(repo(scripts).join("postinst")).unwrap();
    assert!(
        postinst.contains("#DEBHELPER#"),
        "cargo-deb needs the #DEBHELPER# token"
    );
    let units = deb["systemd-units"]["unit-scripts"].as_str().unwrap();
    assert!(repo(units).join("ward.service").is_file());
}
