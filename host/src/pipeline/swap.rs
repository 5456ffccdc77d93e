//! Live transform swap: watches the transform file (and reload requests), compiles and
//! initialises a changed component, and hands it to the shaper only if both worked.

use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::recipe::Recipe;
use crate::runtime::{Runtime, Transform};

/// How often the file is looked at; a swap starts within this of a change.
const POLL_EVERY: Duration = Duration::from_millis(250);

pub struct TransformWatch {
    pub path: PathBuf,
    pub runtime: Runtime,
    pub recipe: Recipe,
    pub swaps: SyncSender<Transform>,
    /// Bumped on SIGHUP or `skippr reload`: look again even if the file seems unchanged.
    pub reloads: watch::Receiver<u64>,
}

impl TransformWatch {
    pub async fn run(mut self) {
        let mut seen = stamp(&self.path);
        loop {
            let forced = tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => false,
                changed = self.reloads.changed() => changed.is_ok(),
            };
            let now = stamp(&self.path);
            if now == seen && !forced {
                continue;
            }
            seen = now;
            // Compiling may take a while: let the other tenants' tasks move to another worker.
            match tokio::task::block_in_place(|| self.load()) {
                Ok(transform) => {
                    if self.swaps.send(transform).is_err() {
                        return;
                    }
                }
                Err(reason) => tracing::error!(
                    transform = %self.path.display(), reason = %reason,
                    "New transform refused; the running one stays."
                ),
            }
        }
    }

    /// Compiles the file and proves it initialises with the pipeline's options.
    fn load(&self) -> Result<Transform, String> {
        let transform = self.runtime.load_file(&self.path).map_err(|err| err.to_string())?;
        self.recipe.instantiate(&transform, 0).map_err(|err| err.to_string())?;
        Ok(transform)
    }
}

/// What identifies a version of the file cheaply: its length and modification time.
fn stamp(path: &std::path::Path) -> Option<(u64, SystemTime)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}
