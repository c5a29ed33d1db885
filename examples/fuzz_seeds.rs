//! Writes the seeds the `library_open` fuzzer starts from (valid libraries written by
//! papersim's own code, packed the way the harness reads them) into a directory:
//! `cargo run --example fuzz_seeds -- fuzz/corpus/library_open`. `scripts/fuzz.sh` runs it when
//! that corpus is empty; `tests/fuzz_regressions.rs` checks that every seed opens and searches.

#[allow(dead_code)] // the harness's other entry points
#[path = "../fuzz/src/harness.rs"]
mod harness;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .context("usage: fuzz_seeds DIR (for example fuzz/corpus/library_open)")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
    let seeds = harness::library_seeds();
    for (name, data) in &seeds {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("wrote {} library seeds into {dir:?}", seeds.len());
    Ok(())
}
