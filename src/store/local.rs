//! The local store: the library directory itself, as papersim always kept it. A view is the
//! whole library, so a ranking reads exactly what it read before stores existed.

use std::path::Path;

use super::{Need, Store, View};
use crate::library::{Library, Manifest};
use crate::Result;

pub struct LocalStore {
    lib: Library,
}

impl LocalStore {
    pub fn open(root: &Path) -> Result<LocalStore> {
        Ok(LocalStore {
            lib: Library::open_for_reading(root)?,
        })
    }
    /// The open library.
    pub fn library(&self) -> &Library {
        &self.lib
    }
}

impl Store for LocalStore {
    fn engine(&self) -> &'static str {
        "local"
    }
    fn manifest(&self) -> &Manifest {
        self.lib.manifest()
    }
    fn len(&self) -> Result<usize> {
        Ok(self.lib.len())
    }
    fn view(&self, _need: &Need) -> Result<View<'_>> {
        Ok(View::Whole(&self.lib))
    }
}
