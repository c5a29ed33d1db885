//! Data safety (#17): a regression test for each way papersim once lost, overwrote or misread
//! a user's data, through the real binary. Each submodule covers one part of the program; each
//! test names the numbered item of the issue it pins. The guarantees these tests stand behind
//! are listed in docs/reliability.md.
mod library;
mod model;

mod identity;

mod output;
