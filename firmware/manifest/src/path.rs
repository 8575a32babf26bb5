//! Paths in the box's file tree: one canonical spelling per file, so that a
//! folder listing is one index range and two spellings never name two rows.

use crate::error::PathError;

/// Longest accepted path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;
/// Longest accepted single name, in bytes (Linux `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;
/// Where the manifest itself appears in the box's tree.
pub const MANIFEST_PATH: &str = "/MANIFEST.db";

/// A validated absolute path of a file in the box's tree, split into folder and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilePath {
    folder: String,
    name: String,
}

impl FilePath {
    /// Checks `path` and splits it. `/a/b.txt` → folder `/a`, name `b.txt`.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let folder_path = FolderPath::parse(path)?;
        if folder_path.as_str() == "/" {
            return Err(PathError::NotAFile(path.to_owned()));
        }
        if folder_path.as_str() == MANIFEST_PATH {
            return Err(PathError::Reserved(path.to_owned()));
        }
        let s = folder_path.0;
        // parse() guarantees at least one '/' and a non-empty last component.
        let cut = s.rfind('/').unwrap_or(0);
        let folder = if cut == 0 {
            "/".to_owned()
        } else {
            s[..cut].to_owned()
        };
        let name = s[cut + 1..].to_owned();
        Ok(FilePath { folder, name })
    }

    /// The folder holding the file (`/` for top-level files).
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// The file's own name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full path again.
    pub fn to_path_string(&self) -> String {
        if self.folder == "/" {
            format!("/{}", self.name)
        } else {
            format!("{}/{}", self.folder, self.name)
        }
    }
}

impl std::fmt::Display for FilePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_path_string())
    }
}

/// A validated absolute folder path (`/` or `/a/b`, never a trailing slash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderPath(String);

impl FolderPath {
    /// The root folder.
    pub fn root() -> Self {
        FolderPath("/".to_owned())
    }

    /// Checks `path`; one trailing slash is tolerated and dropped.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        if path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong {
                len: path.len(),
                max: MAX_PATH_LEN,
            });
        }
        if !path.starts_with('/') {
            return Err(PathError::NotAbsolute(path.to_owned()));
        }
        if path.chars().any(char::is_control) {
            return Err(PathError::ControlCharacter {
                path: path.to_owned(),
            });
        }
        if path == "/" {
            return Ok(Self::root());
        }
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        for component in trimmed[1..].split('/') {
            if component.is_empty() || component == "." || component == ".." {
                return Err(PathError::BadComponent {
                    path: path.to_owned(),
                });
            }
            if component.len() > MAX_NAME_LEN {
                return Err(PathError::NameTooLong {
                    name: component.to_owned(),
                    max: MAX_NAME_LEN,
                });
            }
        }
        Ok(FolderPath(trimmed.to_owned()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The enclosing folder and this folder's name; `None` for the root.
    pub fn parent_and_name(&self) -> Option<(FolderPath, &str)> {
        if self.0 == "/" {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        let parent = if cut == 0 {
            "/".to_owned()
        } else {
            self.0[..cut].to_owned()
        };
        Some((FolderPath(parent), &self.0[cut + 1..]))
    }
}

impl std::fmt::Display for FolderPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_folder_and_name() {
        let p = FilePath::parse("/photos/2024/a.jpg").unwrap();
        assert_eq!(p.folder(), "/photos/2024");
        assert_eq!(p.name(), "a.jpg");
        assert_eq!(p.to_path_string(), "/photos/2024/a.jpg");
        let top = FilePath::parse("/x").unwrap();
        assert_eq!(top.folder(), "/");
        assert_eq!(top.to_path_string(), "/x");
    }

    #[test]
    fn refuses_ambiguous_or_hostile_paths() {
        assert!(matches!(
            FilePath::parse("a/b"),
            Err(PathError::NotAbsolute(_))
        ));
        assert!(matches!(
            FilePath::parse("/a//b"),
            Err(PathError::BadComponent { .. })
        ));
        assert!(matches!(
            FilePath::parse("/a/../b"),
            Err(PathError::BadComponent { .. })
        ));
        assert!(matches!(
            FilePath::parse("/a/./b"),
            Err(PathError::BadComponent { .. })
        ));
        assert!(matches!(
            FilePath::parse("/a\0b"),
            Err(PathError::ControlCharacter { .. })
        ));
        assert!(matches!(FilePath::parse("/"), Err(PathError::NotAFile(_))));
        assert!(matches!(
            FilePath::parse("/MANIFEST.db"),
            Err(PathError::Reserved(_))
        ));
        let long = format!("/{}", "n".repeat(256));
        assert!(matches!(
            FilePath::parse(&long),
            Err(PathError::NameTooLong { .. })
        ));
        let huge = "/a".repeat(3000);
        assert!(matches!(
            FilePath::parse(&huge),
            Err(PathError::TooLong { .. })
        ));
    }

    #[test]
    fn folder_parents_walk_up_to_root() {
        let f = FolderPath::parse("/a/b/").unwrap();
        assert_eq!(f.as_str(), "/a/b");
        let (parent, name) = f.parent_and_name().unwrap();
        assert_eq!((parent.as_str(), name), ("/a", "b"));
        let (root, name) = parent.parent_and_name().unwrap();
        assert_eq!((root.as_str(), name), ("/", "a"));
        assert!(root.parent_and_name().is_none());
    }
}
