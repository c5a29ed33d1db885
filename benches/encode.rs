//! Encoding throughput per device and batch size (criterion).
//!
//! `cargo bench --bench encode` on the CPU; in a `--features cuda` build with a GPU the CUDA
//! groups run too (`PAPERSIM_BENCH_DEVICES=cpu,cuda:1` picks others). A device that cannot run
//! is named with the reason and left out, never replaced by the CPU. For the full sweep with
//! precisions, latency percentiles and agreement, use `papersim bench`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use papersim::encode::device::{self, DeviceRequest, Precision};
use papersim::encode::speed::BenchTexts;
use papersim::encode::tokenize::BatchLimits;
use papersim::{Embedder, EmbedderConfig};

/// Texts encoded per iteration: enough for several batches at the largest batch size.
const TEXTS: usize = 64;
const BATCH_SIZES: [usize; 3] = [1, 8, 32];

fn devices() -> Vec<DeviceRequest> {
    let list = std::env::var("PAPERSIM_BENCH_DEVICES").unwrap_or_else(|_| "cpu,cuda".into());
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.parse()
                .expect("PAPERSIM_BENCH_DEVICES: cpu, cuda or cuda:N")
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let texts = BenchTexts::sample(TEXTS).expect("bundled sample");
    let texts = texts.all();
    for request in devices() {
        if let DeviceRequest::Cuda(n) = request {
            if let Some(reason) = device::cuda_unavailable_reason(n) {
                eprintln!("encode/{request}: not run: {reason}");
                continue;
            }
        }
        let config = EmbedderConfig {
            device: request,
            // Half precision only where it is supported: f16 on CUDA, f32 on the CPU.
            precision: if request == DeviceRequest::Cpu {
                Precision::F32
            } else {
                Precision::F16
            },
            ..EmbedderConfig::default()
        };
        let mut embedder = Embedder::new(&config, &papersim::progress::NoProgress)
            .expect("the default model loads (see models/README.md)");
        let mut group = c.benchmark_group(format!("encode/{request}/{}", config.precision));
        group.sample_size(10);
        group.throughput(Throughput::Elements(TEXTS as u64));
        for batch in BATCH_SIZES {
            embedder.set_batch_limits(BatchLimits {
                max_texts: batch,
                max_tokens: batch * embedder.max_seq_length(),
            });
            group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
                b.iter(|| {
                    let out = embedder.embed(&texts).expect("embedding");
                    // The vectors are already on the host; this also waits for any queued work.
                    device::synchronize(embedder.device()).expect("synchronize");
                    out
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, encode);
criterion_main!(benches);
