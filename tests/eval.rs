//! `ward eval` end to end, as root: the real binary, two profiles, the JSON scorecard.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};

#[test]
fn eval_scorecard_json() {
    if !root_or_skip() {
        return;
    }
    let child = Command::new(WARD)
        .args(["eval", "--profiles", "inplace,gzip", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ward eval starts");
    let pid = child.id();
    let out = child.wait_with_output().expect("ward eval runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ward eval failed ({}): {stderr}",
        out.status
    );
    let card: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "scorecard is not JSON: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let profiles = card["profiles"].as_array().expect("profiles array");
    assert_eq!(profiles.len(), 2, "{card:#}");
    let get = |name: &str| {
        profiles
            .iter()
            .find(|p| p["profile"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {card:#}"))
    };
    let inplace = get("inplace");
    assert_eq!(inplace["kind"], "attack");
    assert!(inplace["error"].is_null(), "{inplace:#}");
    assert_eq!(inplace["detected"], true, "{inplace:#}");
    assert_eq!(inplace["contained"], true, "{inplace:#}");
    assert!(
        inplace["files_touched"].as_u64().unwrap() <= 5,
        "{inplace:#}"
    );
    assert!(inplace["contain_ms"].as_f64().is_some(), "{inplace:#}");
    assert_eq!(inplace["files_lost"], 0, "files lost: {inplace:#}");
    assert_eq!(card["totals"]["files_lost_total"], 0, "{card:#}");
    let gzip = get("gzip");
    assert_eq!(gzip["kind"], "benign");
    assert!(gzip["error"].is_null(), "{gzip:#}");
    assert_eq!(gzip["incidents"], 0, "false incident on gzip: {gzip:#}");
    // Totals and targets are present.
    assert_eq!(card["totals"]["attacks"], 1);
    assert_eq!(card["totals"]["benign"], 1);
    assert_eq!(card["totals"]["false_incidents"], 0);
    let targets = card["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 6, "{card:#}");
    // Progress went to stderr.
    assert!(stderr.contains("[1/2] inplace"), "{stderr}");
    // Nothing of this run left mounted (its scratch directories are named after its pid).
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tag = format!("ward-scratch-{pid}-");
    assert!(
        !mounts.lines().any(|l| l.contains(&tag)),
        "scratch filesystem left mounted:\n{mounts}"
    );
}
