//! `ward eval`: the scorecard. (Being implemented.)

use crate::ExitError;

/// Arguments of `ward eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Filesystem of the scratch images: ext4, xfs or btrfs.
    #[arg(long, default_value = "ext4")]
    pub fs: String,
    /// Corpus size per profile.
    #[arg(long, default_value_t = 200)]
    pub files: usize,
    /// Corpus seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only these profiles (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub profiles: Vec<String>,
    /// The scorecard as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_a: EvalArgs) -> Result<(), ExitError> {
    Err(ExitError::runtime("ward eval is not implemented yet"))
}
