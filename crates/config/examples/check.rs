//! `cargo run -p ward-config --example check -- [FILE]`: what `ward check-config` does.

use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .unwrap_or_else(|| ward_config::DEFAULT_PATH.into());
    match ward_config::check(path.as_ref()) {
        Ok(_) => {
            println!("{}: valid", std::path::Path::new(&path).display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
