//! Manual driver for the simulator before/without the `ward` CLI:
//!
//! ```text
//! cargo run -p ward-sim --example sim -- init DIR [FILES] [SEED]
//! cargo run -p ward-sim --example sim -- run PROFILE DIR [MAX_FILES]
//! cargo run -p ward-sim --example sim -- list
//! ```

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("init") if args.len() >= 2 => {
            let files = args
                .get(2)
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(ward_lab::DEFAULT_FILES);
            let seed = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1);
            let m = ward_lab::init_corpus(&PathBuf::from(&args[1]), files, seed)?;
            println!("created {} files", m.files.len());
        }
        Some("run") if args.len() >= 3 => {
            let exe = std::env::current_exe()?
                .parent()
                .and_then(|p| p.parent())
                .map(|p| p.join("ward-sim-child"))
                .unwrap_or_default();
            let opts = ward_lab::RunOptions {
                max_files: args.get(3).map(|s| s.parse()).transpose()?,
                exe,
                ..Default::default()
            };
            let rep = ward_lab::run(&args[1], &PathBuf::from(&args[2]), &opts)?;
            println!("{}", serde_json::to_string_pretty(&rep)?);
        }
        Some("list") => {
            for p in ward_lab::profiles() {
                println!("{:20} {:7} {}", p.name, p.kind, p.description);
            }
        }
        _ => eprintln!("usage: sim init DIR [FILES] [SEED] | sim run PROFILE DIR [MAX] | sim list"),
    }
    Ok(())
}
