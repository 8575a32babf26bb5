//! Sealed objects and their proof sidecars on disk. (Placeholder: written
//! by the hosting side of the engine.)

use std::path::{Path, PathBuf};

/// Where sealed objects live.
pub(crate) struct ObjectStore {
    #[allow(dead_code)]
    root: PathBuf,
}

impl ObjectStore {
    pub(crate) fn open(root: &Path) -> std::io::Result<ObjectStore> {
        std::fs::create_dir_all(root)?;
        Ok(ObjectStore { root: root.to_path_buf() })
    }
}
