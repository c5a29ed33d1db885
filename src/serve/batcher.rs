//! Dense queries embedded together: one thread takes the query texts that wait for the
//! encoder and runs them through it as one batch, the way text-embeddings-inference queues
//! its requests.
//!
//! Why: on the CPU one short query costs the encoder about as much as several. The forward
//! pass streams every weight of the model through the core once per batch (90 MB for
//! MiniLM), and a query of a few tokens does little arithmetic with each, so sixteen queries
//! in one pass cost little more than one. A server answering many readers at once otherwise
//! runs sixteen passes side by side, each fighting the others for memory bandwidth.
//!
//! The threads are also a bulkhead: embedding runs there, one batch at a time each, on the
//! encoder's own rayon pool at a lower priority ([`ENCODER_NICE`]), rather than on as many
//! blocking threads as there are queries in flight. A burst of text queries (or an ingest,
//! [`QueryBatcher::background`]) then queues for the encoder instead of crowding out the
//! lookups and rankings that need no model, which cost a fraction of a pass each.
//! A batch's texts are grouped by encoder (a library re-embedded with another model gets a
//! new one); a batch that fails is retried one text at a time, so that one text the encoder
//! refuses fails only its own request.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use crate::encode::Embedder;
use crate::{Error, Result};

/// Bounds of `serve --query-batch`: 1 embeds each query alone; past 256 queries a batch pads
/// every text to its longest and holds all their activations, for no further saving (the
/// weights are already read once for many queries).
pub const QUERY_BATCH_RANGE: std::ops::RangeInclusive<usize> = 1..=256;
/// The default `--query-batch`: measured with MiniLM on 2 cores, sixteen short queries in one
/// pass cost about twice one query's pass; 32 leaves room for bursts.
pub const DEFAULT_QUERY_BATCH: usize = 32;
/// Query texts that may wait for the encoder at once, per text a batch may hold: more is a
/// backlog that the request time limit would cut short anyway, so it is refused at once.
const QUEUED_BATCHES: usize = 64;

/// One query waiting for its vector.
struct Job {
    embedder: Arc<Embedder>,
    text: String,
    reply: SyncSender<Result<Vec<f32>>>,
}

/// Hands query texts to the embedding thread and waits for their vectors.
pub struct QueryBatcher {
    jobs: SyncSender<Job>,
    /// The encoder's threads, below the priority of the request threads.
    pool: Arc<rayon::ThreadPool>,
}

impl QueryBatcher {
    /// Starts the embedding thread, which embeds at most `max_batch` texts in one pass (within
    /// [`QUERY_BATCH_RANGE`]; checked by the server's configuration). The thread ends when the
    /// batcher is dropped.
    pub fn start(max_batch: usize) -> Result<QueryBatcher> {
        let max_batch = max_batch.clamp(*QUERY_BATCH_RANGE.start(), *QUERY_BATCH_RANGE.end());
        let (jobs, queue) = mpsc::sync_channel(max_batch * QUEUED_BATCHES);
        let queue = Arc::new(Mutex::new(queue));
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                // As many as the rest of the program uses (`--threads`, else one a core).
                .num_threads(rayon::current_num_threads())
                .thread_name(|i| format!("papersim-encode-{i}"))
                .start_handler(|_| yield_to_lookups())
                .build()
                .map_err(|e| {
                    Error::InvalidInput(format!("cannot start the encoder's threads: {e}"))
                })?,
        );
        for i in 0..embedding_threads() {
            let queue = queue.clone();
            let pool = pool.clone();
            std::thread::Builder::new()
                .name(format!("papersim-embed-{i}"))
                .spawn(move || {
                    yield_to_lookups();
                    run(&queue, max_batch, &pool)
                })
                .map_err(|e| {
                    Error::InvalidInput(format!("cannot start an embedding thread: {e}"))
                })?;
        }
        Ok(QueryBatcher { jobs, pool })
    }

    /// Runs `work` (an ingest) on the encoder's threads, at their lower priority: its
    /// embedding and indexing then give way to lookups as the query passes do.
    pub fn background<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.pool.install(work)
    }

    /// The vector of query `text` by `embedder` (after its query prompt, as
    /// [`Embedder::embed_queries`]); blocks the calling thread until its batch is done.
    pub fn embed(&self, embedder: &Arc<Embedder>, text: &str) -> Result<Vec<f32>> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            embedder: embedder.clone(),
            text: text.to_string(),
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(Error::Overloaded(
                    "too many text queries are waiting for the encoder; try again shortly".into(),
                ))
            }
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        answer.recv().map_err(|_| stopped())?
    }
}

/// Threads that embed batches side by side: two a core. Measured under the load benchmark's
/// mix on 2 cores (docs/serve.md): with one a core a text query waited for a free thread
/// (p50 96 ms), with two 39 ms, and the other requests were as fast; the passes share the
/// cores with the rest of the server either way.
fn embedding_threads() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn stopped() -> Error {
    Error::Overloaded("the embedding thread has stopped; restart the server".into())
}

/// The embedding thread: waits for a query, takes every other one waiting (up to
/// `max_batch`), embeds them and answers each.
fn run(queue: &Mutex<Receiver<Job>>, max_batch: usize, pool: &rayon::ThreadPool) {
    loop {
        let mut batch = Vec::new();
        {
            // One thread at a time takes a batch: the first job it waits for, then what else
            // is waiting. The other threads are embedding or waiting for their turn.
            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            match queue.recv() {
                Ok(first) => batch.push(first),
                Err(_) => return,
            }
            while batch.len() < max_batch {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        while !batch.is_empty() {
            let embedder = batch[0].embedder.clone();
            let (same, rest): (Vec<Job>, Vec<Job>) = batch
                .into_iter()
                .partition(|j| Arc::ptr_eq(&j.embedder, &embedder));
            batch = rest;
            pool.install(|| answer(&embedder, same));
        }
    }
}

/// Embeds `jobs` (one encoder's) in one pass and answers each; alone each if the pass fails.
fn answer(embedder: &Embedder, jobs: Vec<Job>) {
    let texts: Vec<&str> = jobs.iter().map(|j| j.text.as_str()).collect();
    match guarded(embedder, &texts) {
        Ok(vectors) => {
            for (job, vector) in jobs.iter().zip(vectors) {
                // A request that timed out has gone: nobody to answer.
                let _ = job.reply.send(Ok(vector));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let _ = jobs[0].reply.send(Err(e));
        }
        Err(_) => {
            for job in jobs {
                let alone = guarded(embedder, &[job.text.as_str()])
                    .map(|mut v| v.pop().unwrap_or_default());
                let _ = job.reply.send(alone);
            }
        }
    }
}

/// The vectors of `texts`, with a panic in the encoder turned into an error, so that the
/// thread lives on for the next batch.
fn guarded(embedder: &Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    let run = || -> Result<Vec<Vec<f32>>> {
        let e = embedder.embed_queries(texts)?;
        Ok((0..e.len()).map(|i| e.row(i).to_vec()).collect())
    };
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
        Err(Error::InvalidInput(
            "the encoder failed on this query text (it panicked)".into(),
        ))
    })
}

/// The nice value of the encoder's threads (the request threads keep 0). Linux's scheduler
/// gives a thread of nice 10 about a tenth of the share of one of nice 0 while both want a
/// core. Measured under the load benchmark's mix on 2 cores (docs/serve.md): a text query's
/// pass costs several lookups, and at equal priority every `similar` waited behind the
/// passes (p50 29 ms); at nice 10 it waited for the other lookups only (10 ms), and the text
/// queries, which now take what the lookups leave, 95 ms instead of 46. When the lookups stop
/// the encoder has every core: the nice value only orders threads that compete.
pub const ENCODER_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`ENCODER_NICE`], under Linux's batch policy.
/// Linux only: elsewhere the priority is the process's, not a thread's, and stays as it is.
fn yield_to_lookups() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers, sched_setscheduler a parameter that
    // lives through the call; on Linux both, given a thread id, set that one thread's policy
    // and nice value. Raising one's own nice value needs no privilege, and
    // a failure leaves the thread at its priority, which is only slower under load.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // SCHED_BATCH: CPU-bound work that never preempts a waking request thread.
        let normal = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(tid as libc::pid_t, libc::SCHED_BATCH, &normal);
        libc::setpriority(libc::PRIO_PROCESS, tid, ENCODER_NICE);
    }
}
