//! The metrics file (`[agent] metrics_file`): this cycle's Reading, levels and the
//! agent's own counters as Prometheus text (`report::prometheus`), replaced whole
//! each cycle for node_exporter's textfile collector. A file that cannot be
//! written is reported when it starts failing and when it works again.

use super::{Cx, Feature};
use crate::config::Config;
use crate::error::Error;
use crate::health::Output;
use crate::log::Level;
use crate::report;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Default)]
pub struct MetricsFile {
    /// The file with its health, kept while its path stays the same.
    output: Option<Output>,
    /// The path was tried (a path that cannot be used is reported once).
    opened: bool,
    /// The text written (its storage reused).
    text: String,
}

impl Feature for MetricsFile {
    fn name(&self) -> &'static str {
        "metrics_file"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        cx.cfg.agent.metrics_file.is_some()
    }

    /// Temporary files a crash left beside it.
    fn load(&mut self, cx: &mut Cx) {
        let path = cx.cfg.agent.metrics_file.as_deref();
        if let Some((dir, name)) = path.and_then(|p| Some((p.parent()?, p.file_name()?)))
            && let Err(why) = crate::files::remove_stale_temps(dir, Some(name.as_bytes()))
            && !why.is_missing()
        {
            let err = Error::file(dir, why);
            cx.log.error(Level::Warn, "metrics_file", err).emit();
        }
    }

    fn step(&mut self, cx: &mut Cx) {
        let Some(path) = cx.cfg.agent.metrics_file.as_deref() else {
            return;
        };
        if !self.opened {
            self.opened = true;
            self.output = open(cx, path);
        }
        let Some(file) = &mut self.output else { return };
        let extra = report::Extra {
            cycles: cx.stats.cycles,
            cycle_seconds: cx.stats.last_cycle_seconds,
            relief: cx.cfg.relief.enabled,
        };
        report::prometheus(&mut self.text, cx.metrics, cx.reading, &extra);
        file.write(self.text.as_bytes(), false, cx.log);
    }

    /// Another path is another file (with a health of its own).
    fn reload(&mut self, _old: &Config, new: &Config) {
        let path = new.agent.metrics_file.as_deref();
        if self.output.as_ref().map(Output::path) != path {
            self.output = None;
            self.opened = false;
        }
    }
}

fn open(cx: &mut Cx, path: &Path) -> Option<Output> {
    match Output::new("metrics_file", path, 0o644) {
        Ok(o) => Some(o),
        Err(why) => {
            let err = Error::file(path, why);
            cx.log.error(Level::Error, "metrics_file", err).emit();
            None
        }
    }
}
