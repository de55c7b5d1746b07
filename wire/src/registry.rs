//! Named modules as clients see them (`weft module list/show`).

use serde::{Deserialize, Serialize};

/// One version of a named module.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ModuleVersionInfo {
    /// The version: the first 12 hex digits of the hash.
    pub version: String,
    /// The module's SHA-256 (hex).
    pub hash: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was pushed, seconds since the Unix epoch.
    pub pushed_unix: u64,
}

/// A named module.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// `TENANT/NAME`.
    pub name: String,
    /// Whether every tenant may use it.
    pub public: bool,
    /// The version `latest` stands for.
    pub latest: String,
    /// Every version, oldest first.
    pub versions: Vec<ModuleVersionInfo>,
    /// The functions the latest version exports (`weft module show` only; empty in lists).
    pub exports: Vec<String>,
    /// The UDFs the latest version declares, as `name(input) -> output` with their doc comment
    /// (`weft module show` only).
    #[serde(default)]
    pub udfs: Vec<String>,
}
