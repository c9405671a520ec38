//! Test helper standing in for the `ward` binary in fork-per-file runs:
//! `ward-sim-child simulate __child --dir DIR REL` calls [`ward_lab::child_one`].

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [sim, child, flag, dir, rel]
            if sim == "simulate" && child == "__child" && flag == "--dir" =>
        {
            match ward_lab::child_one(&PathBuf::from(dir), &PathBuf::from(rel)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ward-sim-child: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: ward-sim-child simulate __child --dir DIR REL");
            ExitCode::from(2)
        }
    }
}
