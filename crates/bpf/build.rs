//! Compiles `src/bpf/connect.bpf.c` and `src/bpf/files.bpf.c` into BPF objects in `OUT_DIR`
//! (clang, through libbpf-cargo's SkeletonBuilder), which the crate embeds and loads through
//! libbpf-rs's object API (no generated skeleton: the crate needs no `unsafe` that way). The
//! C side checks the event layouts with static asserts.
//!
//! Build-time needs (scripts/setup-bpf.sh installs them): clang (any version that targets
//! BPF; Debian 12's clang 14 works), the kernel uapi headers (linux-libc-dev), and for the
//! vendored libbpf that libbpf-sys builds: make, a C compiler, pkg-config, libelf-dev and
//! zlib1g-dev. Nothing here needs root or a BPF-capable kernel.
//!
//! With `--no-default-features` (no `bpf` feature) nothing is compiled and the crate offers
//! only the procfs fallback.

/// Each source and the object file name it is compiled to in `OUT_DIR`.
const SOURCES: [(&str, &str); 2] = [
    ("src/bpf/connect.bpf.c", "connect.bpf.o"),
    ("src/bpf/files.bpf.c", "files.bpf.o"),
];

fn main() {
    for (src, _) in SOURCES {
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CLANG");
    #[cfg(feature = "bpf")]
    build_bpf();
}

#[cfg(feature = "bpf")]
fn build_bpf() {
    use std::env;
    use std::path::PathBuf;
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var_os("CLANG").unwrap_or_else(|| "clang".into());
    if std::process::Command::new(&clang)
        .arg("--version")
        .output()
        .is_err()
    {
        panic!(
            "ward-bpf: `{}` not found; the BPF programs (connect monitor, file observer) need clang to build. \
             Run `bash scripts/setup-bpf.sh` as root (installs clang, libbpf-dev, libelf-dev, \
             zlib1g-dev, pkg-config, make), set CLANG=/path/to/clang, or build without BPF \
             (`--no-default-features` on ward-bpf: procfs fallback only)",
            PathBuf::from(&clang).display()
        );
    }
    // <linux/bpf.h> pulls <asm/types.h>, which Debian keeps under the multiarch directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        other => other,
    };
    for (src, obj) in SOURCES {
        libbpf_cargo::SkeletonBuilder::new()
            .source(src)
            .obj(out.join(obj))
            .clang(&clang)
            .clang_args([format!("-I/usr/include/{multiarch}"), "-Wall".to_string()])
            .build()
            .unwrap_or_else(|e| panic!("ward-bpf: compiling {src} failed: {e:#}"));
    }
}
