//! The page, embedded in the binary: nothing is read from disk or fetched from elsewhere, so
//! it works offline and only these three files can be served.

pub const HTML: &str = include_str!("assets/index.html");
pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");
