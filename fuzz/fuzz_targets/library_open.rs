//! A library directory written from arbitrary bytes (manifest, papers, embeddings, graph),
//! opened and searched: clean errors or a consistent library, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    papersim_fuzz::harness::library(data);
});
