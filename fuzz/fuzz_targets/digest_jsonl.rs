//! The digest parser (`InputFormat::Jsonl`) on arbitrary bytes: no panic, and sane papers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use papersim::digest::InputFormat;

fuzz_target!(|data: &[u8]| {
    papersim_fuzz::harness::digest(InputFormat::Jsonl, data);
});
