//! `ward bench`: overhead of protection on file-heavy work. (Being implemented.)

use crate::ExitError;

/// Arguments of `ward bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Files in the workload tree.
    #[arg(long, default_value_t = 3000)]
    pub files: usize,
    /// Pairs of (unprotected, protected) runs; the median ratio is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_a: BenchArgs) -> Result<(), ExitError> {
    Err(ExitError::runtime("ward bench is not implemented yet"))
}
