//! JSON Lines destinations: stdout, stderr, or a file appended to.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::buffer::SinkMark;

/// Buffers small writes (dead letters) and passes batches through in one write.
pub struct LineSink {
    name: String,
    writer: BufWriter<Box<dyn Write + Send>>,
    /// For a regular file: a second handle to sync it and read its length.
    file: Option<(PathBuf, File)>,
}

impl LineSink {
    pub fn stream(name: &str, writer: Box<dyn Write + Send>) -> Self {
        Self { name: name.to_owned(), writer: BufWriter::with_capacity(64 << 10, writer), file: None }
    }

    /// Opens the file now, so a bad path fails before the run starts.
    pub fn file(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|err| format!("cannot open {} for writing: {err}", path.display()))?;
        let regular = match file.metadata().is_ok_and(|meta| meta.is_file()) {
            true => Some((
                path.to_path_buf(),
                file.try_clone().map_err(|err| format!("cannot open {}: {err}", path.display()))?,
            )),
            false => None,
        };
        let mut sink = Self::stream(&path.display().to_string(), Box::new(file));
        sink.file = regular;
        Ok(sink)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        self.writer.write_all(lines)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Flushes and makes the lines durable; for a regular file, returns its length then
    /// (what a checkpoint records). Pipes and terminals are only flushed.
    pub fn sync(&mut self) -> io::Result<Option<SinkMark>> {
        self.writer.flush()?;
        let Some((path, file)) = &self.file else { return Ok(None) };
        file.sync_data()?;
        Ok(Some(SinkMark { path: path.clone(), len: file.metadata()?.len() }))
    }
}
