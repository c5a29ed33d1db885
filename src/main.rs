//! The `papersim` binary: parses the command line, runs it, prints the error chain and maps
//! the outcome to an exit code. Everything else lives in the library and in `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `papersim ... | head` closes the pipe early: that is success, not an error.
            if cli::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            // Messages quote titles and file names: shown escaped, never as terminal controls.
            let message = err.to_string();
            eprintln!("papersim: error: {}", cli::printable_lines(&message));
            // A cause is shown only when it adds to what was said: most errors already quote
            // their cause (`path: No such file or directory`).
            let mut said = message;
            for cause in err.chain().skip(1).map(|c| c.to_string()) {
                if !said.contains(&cause) {
                    eprintln!("  caused by: {}", cli::printable_lines(&cause));
                    said.push('\n');
                    said.push_str(&cause);
                }
            }
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
