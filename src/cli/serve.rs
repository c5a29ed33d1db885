//! `papersim serve`: parses the options, binds, prints where it listens (and a new token
//! once), then serves until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::{library_dir, load_embedder, progress, Global};
use papersim::serve::{self, Access, Config};

pub fn serve(
    g: &Global,
    addr: SocketAddr,
    max_body: usize,
    timeout_s: u64,
    query_batch: usize,
    record_cache_mib: usize,
) -> Result<()> {
    if papersim::library::Library::exists(&library_dir(g)) {
        // The server holds a local library open; a Qdrant one it would serve as empty.
        super::open_library(g)?;
    }
    let quiet = g.clone();
    let embedder_options = g.clone();
    let config = Config {
        root: library_dir(g),
        addr,
        max_body,
        timeout: Duration::from_secs(timeout_s),
        query_batch,
        record_cache_mib,
        load_embedder: Arc::new(move |model: &str| {
            load_embedder(&embedder_options, Some(model), &progress::Bar::new(true))
        }),
    };
    let bound = serve::bind(config)?;
    // Stdout carries the one line a script (or a test) reads to find the server.
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "papersim: serving {} on http://{}/",
        bound.root().display(),
        bound.addr
    )?;
    match &bound.access {
        Access::Loopback => {}
        Access::Token { path, token, new } => {
            if *new {
                writeln!(
                    out,
                    "papersim: this server needs a token (it is bound beyond loopback); a new \
                     one was stored in {} and is shown this once:\n{token}\nopen \
                     http://{}/?token={token} or send `Authorization: Bearer TOKEN`",
                    path.display(),
                    bound.addr
                )?;
            } else {
                writeln!(
                    out,
                    "papersim: this server needs the token stored in {} (send \
                     `Authorization: Bearer TOKEN`, or open /?token=TOKEN once)",
                    path.display()
                )?;
            }
        }
    }
    out.flush()?;
    drop(out);
    super::note(
        &quiet,
        "papersim: Ctrl-C (or SIGTERM) stops it after the requests in flight",
    );
    bound.run()?;
    Ok(())
}
