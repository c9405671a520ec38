//! ward-config against real files: good, bad, unknown keys, wrong types, ranges (with
//! exact positions), unsafe permissions, the shipped example and the old flat keys.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use ward_config::{check, parse, Config, Facility, Format, Mode, Transport};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// A private temp dir (0700) with `name` written at mode 0600.
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let p = d.path().join("ward.toml");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    (d, p)
}

/// (line, column, key) of each error.
fn positions(text: &str) -> Vec<(usize, usize, String)> {
    let e = parse(text, Path::new("t.toml")).expect_err("config should be refused");
    e.errors()
        .iter()
        .map(|e| (e.line, e.column, e.key.clone()))
        .collect()
}

fn one_reason(text: &str) -> String {
    let e = parse(text, Path::new("t.toml")).expect_err("config should be refused");
    assert_eq!(e.len(), 1, "{e}");
    e.errors()[0].reason.clone()
}

const GOOD: &str = r#"
paths = ["/srv/samba/shares", "/var/lib/pacs"]
mode = "contain"
exclude = ["/srv/samba/shares/scratch/**", "*.tmp", "/srv/samba/shares/*/cache/*.bin"]
damage_threshold = 4
decoys = false
kill = false
trusted_programs = ["dpkg", "backup-agent"]
boundary_programs = ["smbd", "sshd"]
trust_after_secs = 600

[[path]]
path = "/var/lib/pacs"
mode = "alert"

[[path]]
path = "/var/lib/pacs/incoming"

[[exclude_program]]
path = "/usr/local/bin/export"
sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

[[exclude_program]]
path = "/usr/bin/rsync"

[vault]
enabled = true
max_mib = 2048
max_file_mib = 512
retention_hours = 48
reserve_mib = 1024

[smb]
enabled = true
smb_conf = "/etc/samba/smb.conf"
client_block_minutes = 30
nft_table = "ward_block"

[worm]
fanout_threshold = 20
fanout_window_secs = 60
isolate_on_worm = true
management_addresses = ["10.0.0.5", "10.20.0.0/16", "fd00::/8"]

[outputs]
format = "ecs"
metrics_addr = "127.0.0.1:9464"
status_socket = "/run/ward/status.sock"

[outputs.file]
path = "/var/log/ward/events.jsonl"
rotate_mib = 50

[outputs.syslog]
address = "127.0.0.1:514"
transport = "udp"
facility = "local3"

[outputs.webhook]
url = "https://siem.example.org:8443/ward"
timeout_secs = 10
headers = { Authorization = "Splunk 0000", X-Source = "ward" }

[console]
url = "https://console.example.org:8443"
"#;

#[test]
fn good_file_loads_every_section() {
    let (_d, p) = file(GOOD);
    let c = check(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.paths,
        [PathBuf::from("/srv/samba/shares"), "/var/lib/pacs".into()]
    );
    assert_eq!((c.damage_threshold, c.decoys, c.kill), (4, false, false));
    assert_eq!(c.trust_after_secs, 600);
    assert_eq!(c.vault.max_bytes(), 2048 << 20);
    assert_eq!(c.vault.reserve_mib, 1024);
    assert_eq!(c.vault.retention().as_secs(), 48 * 3600);
    assert_eq!(c.smb.block_duration().map(|d| d.as_secs()), Some(1800));
    assert_eq!(c.worm.fanout_threshold, 20);
    assert!(c.worm.enabled, "unset keys keep their defaults");
    assert_eq!(c.worm.management_nets().len(), 3);
    assert_eq!(c.outputs.format, Format::Ecs);
    assert_eq!(
        c.outputs.metrics_addr,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    let f = c.outputs.file.as_ref().unwrap();
    assert_eq!((f.rotate_mib, f.keep), (50, 5));
    let s = c.outputs.syslog.as_ref().unwrap();
    assert_eq!(
        (s.transport, s.facility, s.facility.code()),
        (Transport::Udp, Facility::Local3, 19)
    );
    let w = c.outputs.webhook.as_ref().unwrap();
    assert_eq!(w.spool_dir, None);
    assert_eq!(
        w.spool_dir_in(Path::new("/var/lib/ward")),
        PathBuf::from("/var/lib/ward/spool/webhook")
    );
    assert_eq!((w.max_spool_mib, w.timeout_secs), (64, 10));
    assert_eq!(w.headers["Authorization"], "Splunk 0000");
    assert_eq!(c.exclude_program.len(), 2);
    assert_eq!(c.exclude_program[1].sha256, None);

    // Modes: the longest [[path]] wins; paths without an entry use `mode`.
    assert_eq!(c.mode_for(Path::new("/var/lib/pacs/a.dcm")), Mode::Alert);
    assert_eq!(
        c.mode_for(Path::new("/var/lib/pacs/incoming/b.dcm")),
        Mode::Contain
    );
    assert_eq!(c.mode_for(Path::new("/var/lib/pacsX/c")), Mode::Contain);
    assert_eq!(
        c.mode_for(Path::new("/srv/samba/shares/x.docx")),
        Mode::Contain
    );
    assert_eq!(
        c.protected_paths(),
        [
            PathBuf::from("/srv/samba/shares"),
            "/var/lib/pacs".into(),
            "/var/lib/pacs/incoming".into()
        ]
    );
    assert_eq!(c.alert_paths(), [PathBuf::from("/var/lib/pacs")]);

    // Exclusions.
    let ex = c.excludes();
    assert_eq!(ex.prefixes(), [PathBuf::from("/srv/samba/shares/scratch")]);
    assert!(ex.matches(Path::new("/srv/samba/shares/scratch/a/b.docx")));
    assert!(ex.matches(Path::new("/srv/samba/shares/letters/x.tmp")));
    assert!(ex.matches(Path::new("/srv/samba/shares/u1/cache/x.bin")));
    assert!(!ex.matches(Path::new("/srv/samba/shares/u1/deeper/cache/x.bin")));
    assert!(!ex.matches(Path::new("/srv/samba/shares/letters/x.docx")));
    assert!(!ex.matches(Path::new("/srv/samba/shares/scratchpad.docx")));
}

#[test]
fn shipped_example_is_exactly_the_defaults() {
    let text = std::fs::read_to_string(repo("packaging/ward.toml")).unwrap();
    let c = parse(&text, Path::new("packaging/ward.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c, Config::default());
}

/// Every key of the schema (including the sections that are off by default) is
/// documented in the example, set or commented out.
#[test]
fn shipped_example_names_every_key() {
    let text = std::fs::read_to_string(repo("packaging/ward.toml")).unwrap();
    let full = parse(GOOD, Path::new("good.toml")).unwrap();
    let mut full = full;
    full.console.enroll_token = Some("t".into());
    full.outputs.webhook.as_mut().unwrap().spool_dir = Some("/s".into());
    full.outputs.webhook.as_mut().unwrap().headers.clear();
    let v = toml::Value::try_from(&full).unwrap();
    let mut keys = Vec::new();
    fn walk(v: &toml::Value, prefix: &str, keys: &mut Vec<(String, String)>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    keys.push((prefix.to_string(), k.clone()));
                    walk(v, &format!("{prefix}{k}."), keys);
                }
            }
            toml::Value::Array(a) => {
                for v in a {
                    walk(v, prefix, keys);
                }
            }
            _ => {}
        }
    }
    walk(&v, "", &mut keys);
    assert!(keys.len() > 40, "{keys:?}");
    for (section, key) in keys {
        let written = text.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key} ="))
                || l == format!("[{section}{key}]")
                || l == format!("[[{key}]]")
        });
        assert!(
            written,
            "{section}{key} is not documented in packaging/ward.toml"
        );
    }
}

/// The example config of ward 0.1 (flat keys only).
const WARD_0_1: &str = r#"# /etc/ward/ward.toml — settings for `ward protect --config /etc/ward/ward.toml`.
# Every key is optional; the values below are the defaults.

# Damaged pre-existing files in one process lineage that make an incident.
# (2 damaged files plus an appended unknown extension or ransom notes also do.)
damage_threshold = 3

# Place a decoy document (!ward-decoy.docx) at the top of each protected directory.
# Encrypting or renaming it away is an immediate incident. Removed when ward stops.
decoys = true

# Programs whose children are independent lineages: never blamed as a whole.
boundary_programs = ["systemd", "init", "sshd", "cron", "crond", "atd", "smbd",
                     "containerd-shim", "runc", "tmux: server", "screen"]

# Kill the lineage after freezing it. false leaves it stopped (SIGSTOP) for forensics.
kill = true

# Keep copies of files before untrusted processes change them, restore after an incident.
vault = true
# Vault budget for copies in MiB (0 = 10 % of the filesystem).
vault_max_mib = 0
# Larger files are not copied on filesystems without reflink (ext4).
vault_max_file_mib = 1024
# Copies of processes that ended without an incident are dropped after this long.
vault_retention_hours = 24

# Programs whose writes are analysed but not copied into the vault.
trusted_programs = ["dpkg", "apt", "apt-get", "rpm", "dnf", "yum", "unattended-upgrade"]
# Trust processes that have run this long (seconds) with a clean lineage. 0 = off: a Samba
# session process serving one client can live for days and must not be trusted.
trust_after_secs = 0
"#;

/// The file of ward 0.1 (flat keys) still loads, and means the same.
#[test]
fn old_flat_config_still_loads() {
    // contrib/ward.toml is still ward 0.1's file until the agent reads ward-config (then
    // it may become the full example: the defaults too); the old text is kept here so the
    // test outlives that file.
    let text = std::fs::read_to_string(repo("contrib/ward.toml")).unwrap_or_default();
    if !text.is_empty() {
        assert_eq!(
            parse(&text, Path::new("old.toml")).unwrap(),
            Config::default()
        );
    }
    assert_eq!(
        parse(WARD_0_1, Path::new("old.toml")).unwrap(),
        Config::default()
    );

    let old = "damage_threshold = 5\ndecoys = false\nkill = false\nvault = false\n\
               vault_max_mib = 100\nvault_max_file_mib = 7\nvault_retention_hours = 2\n\
               trusted_programs = [\"dpkg\"]\ntrust_after_secs = 60\n\
               boundary_programs = [\"smbd\"]\n";
    let c = parse(old, Path::new("old.toml")).unwrap();
    assert_eq!((c.damage_threshold, c.decoys, c.kill), (5, false, false));
    assert!(!c.vault.enabled);
    assert_eq!(
        (
            c.vault.max_mib,
            c.vault.max_file_mib,
            c.vault.retention_hours
        ),
        (100, 7, 2)
    );
    assert_eq!(c.trusted_programs, ["dpkg"]);
    assert_eq!(c.boundary_programs, ["smbd"]);
    assert_eq!(c.trust_after_secs, 60);

    // Old keys beside the new table mix; the same setting twice is an error.
    let c = parse(
        "vault_max_mib = 9\n[vault]\nretention_hours = 3\n",
        "x".as_ref(),
    )
    .unwrap();
    assert_eq!((c.vault.max_mib, c.vault.retention_hours), (9, 3));
    assert_eq!(
        positions("vault_max_mib = 9\n[vault]\nmax_mib = 3\n"),
        [(1, 1, "vault_max_mib".to_string())]
    );
    // An old key's errors are reported under the old name, at its place.
    assert_eq!(
        positions("decoys = true\nvault_retention_hours = 0\n"),
        [(2, 25, "vault_retention_hours".to_string())]
    );
    assert_eq!(
        positions("vault_max_mib = \"big\"\n"),
        [(1, 17, "vault_max_mib".to_string())]
    );
}

#[test]
fn unknown_keys_are_errors_everywhere() {
    let text = "bogus = 1\n[vault]\nenabld = true\n[[path]]\npath = \"/a\"\nmodee = \"alert\"\n\
                [outputs.syslog]\nport = 514\n[nosuch]\nx = 1\n";
    assert_eq!(
        positions(text),
        [
            (1, 1, "bogus".to_string()),
            (3, 1, "vault.enabld".to_string()),
            (6, 1, "path[0].modee".to_string()),
            (8, 1, "outputs.syslog.port".to_string()),
            (9, 2, "nosuch".to_string()),
        ]
    );
    let r = one_reason("[vault]\nenabld = true\n");
    assert!(r.contains("unknown key `enabld`"), "{r}");
    assert!(r.contains("`enabled`"), "lists the known keys: {r}");
    assert!(r.contains("remove it or correct its spelling"), "{r}");
}

#[test]
fn wrong_types_are_errors_with_an_example() {
    let text = "damage_threshold = \"3\"\ndecoys = 1\npaths = \"/srv\"\n[worm]\n\
                fanout_threshold = -4\n[outputs]\nformat = \"json\"\nmetrics_addr = \"localhost\"\n";
    assert_eq!(
        positions(text),
        [
            (1, 20, "damage_threshold".to_string()),
            (2, 10, "decoys".to_string()),
            (3, 9, "paths".to_string()),
            (5, 20, "worm.fanout_threshold".to_string()),
            (7, 10, "outputs.format".to_string()),
            (8, 16, "outputs.metrics_addr".to_string()),
        ]
    );
    let r = one_reason("damage_threshold = \"3\"\n");
    assert!(r.contains("expected a whole number"), "{r}");
    assert!(r.contains("`damage_threshold = 3` (the default)"), "{r}");
    let r = one_reason("[outputs]\nformat = \"json\"\n");
    assert!(r.contains("`native`") && r.contains("`ecs`"), "{r}");
    let r = one_reason("[outputs]\nmetrics_addr = \"localhost\"\n");
    assert!(r.contains("127.0.0.1:9464"), "{r}");
    let r = one_reason("vault = \"yes\"\n");
    assert!(r.contains("vault = true"), "{r}");
    let r = one_reason("[outputs.webhook]\nspool_dir = \"/var/spool/w\"\n");
    assert!(r.contains("missing key `url`"), "{r}");
}

#[test]
fn range_and_value_errors_with_exact_lines() {
    let text = "\
damage_threshold = 0
paths = [\"/srv\", \"relative/dir\", \"/srv\"]
exclude = [\"*.tmp\", \"scratch/**\", \"/x/[a\"]
trusted_programs = [\"/usr/bin/rsync\"]

[vault]
retention_hours = 0
max_mib = 99999999999999

[smb]
nft_table = \"my table\"

[worm]
fanout_threshold = 1
management_addresses = [\"10.0.0.0/33\", \"nope\"]
isolate_on_worm = true

[[exclude_program]]
path = \"/usr/bin/x\"
sha256 = \"abc\"

[outputs.syslog]
transport = \"tcp\"
address = \"siem.example.org\"

[outputs.webhook]
url = \"ftp://siem/\"

[console]
url = \"http://console:8443\"
";
    let got = positions(text);
    let want: Vec<(usize, usize, String)> = [
        (1, 20, "damage_threshold"),
        (2, 18, "paths[1]"),
        (2, 34, "paths[2]"),
        (3, 21, "exclude[1]"),
        (3, 35, "exclude[2]"),
        (4, 21, "trusted_programs[0]"),
        (7, 19, "vault.retention_hours"),
        (8, 11, "vault.max_mib"),
        (11, 13, "smb.nft_table"),
        (14, 20, "worm.fanout_threshold"),
        (15, 25, "worm.management_addresses[0]"),
        (15, 40, "worm.management_addresses[1]"),
        (20, 10, "exclude_program[0].sha256"),
        (24, 11, "outputs.syslog.address"),
        (27, 7, "outputs.webhook.url"),
        (30, 7, "console.url"),
    ]
    .into_iter()
    .map(|(l, c, k)| (l, c, k.to_string()))
    .collect();
    assert_eq!(got, want);
    // isolate_on_worm is fine here: management addresses are given (though bad).
    let r = one_reason("damage_threshold = 1001\n");
    assert!(r.contains("from 1 to 1000"), "{r}");
    let r = one_reason("busy_poll_us = 1001\n");
    assert!(r.contains("from 0 to 1000"), "{r}");
    let r = one_reason("[worm]\nisolate_on_worm = true\n");
    assert!(r.contains("management_addresses"), "{r}");
    let r = one_reason("[outputs.syslog]\ntransport = \"tcp\"\naddress = \"siem\"\n");
    assert!(r.contains("host:port"), "{r}");
}

/// After a bad entry is left out, later entries keep their own index in messages.
#[test]
fn indices_are_those_of_the_file() {
    let text = "[[path]]\npath = \"/a\"\nmode = \"freeze\"\n[[path]]\npath = \"/b\"\n\
                [[path]]\npath = \"c\"\n";
    assert_eq!(
        positions(text),
        [
            (3, 8, "path[0].mode".to_string()),
            (7, 8, "path[2].path".to_string())
        ]
    );
    assert_eq!(
        positions("paths = [1, \"/ok\", \"rel\"]\n"),
        [
            (1, 10, "paths[0]".to_string()),
            (1, 20, "paths[2]".to_string())
        ]
    );
}

/// A required key with a wrong type is reported once (not again as missing), and an
/// enum given a number says what it takes.
#[test]
fn no_follow_on_errors() {
    let text = "[[path]]\npath = 5\n[[path]]\npath = \"/b\"\nmode = 7\n";
    assert_eq!(
        positions(text),
        [
            (2, 8, "path[0].path".to_string()),
            (5, 8, "path[1].mode".to_string())
        ]
    );
    let r = one_reason("mode = 7\n");
    assert!(r.contains("in quotes"), "{r}");
    // A default that does not fit the keys set beside it is reported at their table.
    let e = parse("[outputs.syslog]\ntransport = \"udp\"\n", "t".as_ref()).unwrap_err();
    let e = &e.errors()[0];
    assert_eq!(
        (e.line, e.key.as_str()),
        (1, "outputs.syslog.address"),
        "{e}"
    );
    assert!(
        e.reason
            .starts_with("not set, and its default does not fit"),
        "{e}"
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let e = parse("decoys = true\nkill = \n", Path::new("t.toml")).unwrap_err();
    assert_eq!(e.len(), 1);
    let e = &e.errors()[0];
    assert_eq!(e.line, 2, "{e}");
    assert!(e.reason.starts_with("TOML syntax error"), "{e}");
    let e = parse("a = 1\na = 2\n", Path::new("t.toml")).unwrap_err();
    assert_eq!(e.errors()[0].line, 2, "{e}");
}

#[test]
fn display_is_one_line_per_error() {
    let e = parse(
        "damage_threshold = 0\nbogus = 1\n",
        Path::new("/etc/ward/ward.toml"),
    )
    .unwrap_err();
    let s = e.to_string();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 2, "{s}");
    assert!(
        lines[0].starts_with("/etc/ward/ward.toml:1:20: damage_threshold: "),
        "{s}"
    );
    assert!(
        lines[1].starts_with("/etc/ward/ward.toml:2:1: bogus: unknown key"),
        "{s}"
    );
}

#[test]
fn files_writable_by_others_are_refused() {
    let (d, p) = file("damage_threshold = 3\n");
    assert!(check(&p).is_ok());

    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = check(&p).unwrap_err();
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(e.errors()[0].line, 0);
    let s = e.to_string();
    assert!(s.contains("writable by every user"), "{s}");
    assert!(s.contains(&format!("chmod go-w {}", p.display())), "{s}");

    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o620)).unwrap();
    assert!(check(&p).unwrap_err().to_string().contains("its group"));

    // Errors in the content are still all reported beside the permission problem.
    std::fs::write(&p, "bogus = 1\n").unwrap();
    assert_eq!(check(&p).unwrap_err().len(), 2);
    std::fs::write(&p, "damage_threshold = 3\n").unwrap();

    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let s = check(&p).unwrap_err().to_string();
    assert!(s.contains("its directory"), "{s}");
    assert!(
        s.contains(&format!("chmod go-w {}", d.path().display())),
        "{s}"
    );
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();

    // A symlink into a writable directory is refused too.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let target = open.path().join("real.toml");
    std::fs::write(&target, "").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = d.path().join("link.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let s = check(&link).unwrap_err().to_string();
    assert!(s.contains(&open.path().display().to_string()), "{s}");

    if nix::unistd::geteuid().is_root() {
        // Owned by another user: refused even with safe mode bits.
        nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let s = check(&p).unwrap_err().to_string();
        assert!(s.contains("uid 65534"), "{s}");
        assert!(
            s.contains(&format!("chown root:root {}", p.display())),
            "{s}"
        );
        nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        nix::unistd::chown(d.path(), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let s = check(&p).unwrap_err().to_string();
        assert!(
            s.contains("its directory") && s.contains("chown root:root"),
            "{s}"
        );
        nix::unistd::chown(d.path(), Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        assert!(check(&p).is_ok());
    }
}

#[test]
fn secrets_need_a_private_file() {
    let text = "[console]\nurl = \"https://c:8443\"\nenroll_token = \"abc\"\n";
    let (_d, p) = file(text);
    let c = check(&p).unwrap();
    assert_eq!(c.console.enroll_token.as_deref(), Some("abc"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = check(&p).unwrap_err();
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(
        (e.errors()[0].line, e.errors()[0].key.as_str()),
        (3, "console.enroll_token")
    );
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[test]
fn credential_headers_need_a_private_file() {
    let text = "[outputs.webhook]\nurl = \"https://siem:8088/\"\nheaders = { Authorization = \"Splunk x\", X-Source = \"ward\" }\n";
    let (_d, p) = file(text);
    assert!(check(&p).is_ok());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = check(&p).unwrap_err();
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(e.errors()[0].key, "outputs.webhook.headers.Authorization");
    assert_eq!(e.errors()[0].line, 3);
    let r =
        one_reason("[outputs.webhook]\nurl = \"http://h/\"\nheaders = { \"Bad Name\" = \"v\" }\n");
    assert!(r.contains("not an HTTP header name"), "{r}");
}

#[test]
fn unreadable_and_missing_files() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope.toml");
    let e = check(&missing).unwrap_err();
    assert!(e.to_string().contains("cannot read the config file"), "{e}");
    // An explicitly given file must exist.
    assert!(Config::load(Some(&missing)).is_err());
    // A directory, and bytes that are not UTF-8.
    assert!(check(d.path())
        .unwrap_err()
        .to_string()
        .contains("not a regular file"));
    let (_d2, p) = file("");
    std::fs::write(&p, b"decoys = true\nkill = \xff\n").unwrap();
    let e = check(&p).unwrap_err();
    assert_eq!((e.errors()[0].line, e.errors()[0].column), (2, 8), "{e}");
    // An empty file is all defaults.
    std::fs::write(&p, "").unwrap();
    assert_eq!(check(&p).unwrap(), Config::default());
}

#[test]
fn default_path_missing_means_defaults() {
    if Path::new(ward_config::DEFAULT_PATH).exists() {
        return; // this machine has a real config: load(None) reads it
    }
    assert_eq!(Config::load(None).unwrap(), Config::default());
}

#[test]
fn management_networks() {
    let n = ward_config::IpNet::parse("10.20.0.0/16").unwrap();
    assert!(n.contains("10.20.255.1".parse().unwrap()));
    assert!(!n.contains("10.21.0.1".parse().unwrap()));
    assert!(!n.contains("::1".parse().unwrap()));
    let one = ward_config::IpNet::parse("192.168.1.7").unwrap();
    assert!(one.contains("192.168.1.7".parse().unwrap()));
    assert!(!one.contains("192.168.1.8".parse().unwrap()));
    let all = ward_config::IpNet::parse("0.0.0.0/0").unwrap();
    assert!(all.contains("8.8.8.8".parse().unwrap()));
    let v6 = ward_config::IpNet::parse("fd00::/8").unwrap();
    assert!(v6.contains("fd12::1".parse().unwrap()));
    assert!(ward_config::IpNet::parse("10.0.0.1/33").is_err());
    assert!(ward_config::IpNet::parse("host.example").is_err());
}

/// Mangled files (characters deleted, inserted, lines duplicated) never panic, always
/// end, and every error points inside the file.
#[test]
fn mangled_files_are_reported_not_panicked_on() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as usize) % n.max(1)
    };
    let pieces = [
        "=",
        "\"",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\n",
        "-1",
        "99999999999999999999",
        "x",
        ".",
        "true",
        "'",
        "#",
        "[[path]]\n",
        "é",
    ];
    let mut refused = 0;
    for _ in 0..600 {
        let mut text = GOOD.to_string();
        for _ in 0..1 + next(3) {
            let chars: Vec<char> = text.chars().collect();
            let at = next(chars.len());
            let (head, tail): (String, String) =
                (chars[..at].iter().collect(), chars[at..].iter().collect());
            text = match next(3) {
                0 => format!(
                    "{head}{}",
                    tail.chars().skip(1 + next(4)).collect::<String>()
                ),
                1 => format!("{head}{}{tail}", pieces[next(pieces.len())]),
                _ => {
                    let line = tail.lines().next().unwrap_or("");
                    format!("{head}{line}\n{tail}")
                }
            };
        }
        let lines = text.lines().count() + 1;
        if let Err(e) = parse(&text, Path::new("m.toml")) {
            refused += 1;
            for err in e.errors() {
                assert!(err.line >= 1 && err.line <= lines, "{err} in\n{text}");
                assert!(!err.reason.is_empty());
            }
        }
    }
    assert!(
        refused > 500,
        "mutations should mostly break the file ({refused})"
    );
}

#[test]
fn systemd_dropin_makes_protected_paths_writable() {
    assert_eq!(Config::default().systemd_dropin(), None);
    let c = parse(
        "paths = [\"/srv/share\", \"/data/Scans 2024\"]\n[[path]]\npath = \"/var/lib/pacs\"\nmode = \"alert\"\n[[path]]\npath = \"/srv/100%\"\n",
        "t".as_ref(),
    )
    .unwrap();
    let d = c.systemd_dropin().unwrap();
    let lines: Vec<&str> = d.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "[Service]",
            "ReadWritePaths=-/srv/share",
            "ReadWritePaths=\"-/data/Scans 2024\"",
            "ReadWritePaths=-/var/lib/pacs",
            "ReadWritePaths=-/srv/100%%",
        ]
    );
}

#[test]
fn excluded_programs_by_path_and_hash() {
    let h = "ab".repeat(32);
    let c = parse(
        &format!(
            "[[exclude_program]]\npath = \"/usr/bin/rsync\"\n\
             [[exclude_program]]\npath = \"/opt/export\"\nsha256 = \"{h}\"\n"
        ),
        "t".as_ref(),
    )
    .unwrap();
    let never = || -> Option<String> { panic!("no hash needed") };
    assert!(c.program_excluded(Path::new("/usr/bin/rsync"), never));
    assert!(!c.program_excluded(Path::new("/usr/bin/rsync2"), never));
    assert!(c.program_excluded(Path::new("/opt/export"), || Some(h.to_uppercase())));
    assert!(!c.program_excluded(Path::new("/opt/export"), || Some("cd".repeat(32))));
    assert!(!c.program_excluded(Path::new("/opt/export"), || None));
}
