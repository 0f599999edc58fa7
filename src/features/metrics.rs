//! The metrics file (`[agent] metrics_file`): this cycle's Reading, levels and the
//! agent's own counters as Prometheus text (`report::prometheus`), replaced whole
//! each cycle for node_exporter's textfile collector. A file that cannot be
//! written is reported when it starts failing and when it works again.

use super::outfile::OutFile;
use super::{Cx, Feature};
use crate::config::Config;
use crate::report;

pub struct MetricsFile {
    file: OutFile,
    /// The text written (its storage reused).
    text: String,
}

impl Default for MetricsFile {
    fn default() -> MetricsFile {
        MetricsFile {
            file: OutFile::new("metrics_file"),
            text: String::new(),
        }
    }
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
        self.file.remove_stale_temps(path, cx.log);
    }

    fn step(&mut self, cx: &mut Cx) {
        let Some(path) = cx.cfg.agent.metrics_file.as_deref() else {
            return;
        };
        let extra = report::Extra {
            cycles: cx.stats.cycles,
            cycle_seconds: cx.stats.last_cycle_seconds,
            relief: cx.cfg.relief.enabled,
        };
        report::prometheus(&mut self.text, cx.metrics, cx.reading, &extra);
        self.file.write(path, self.text.as_bytes(), cx.log);
    }

    fn reload(&mut self, _old: &Config, new: &Config) {
        self.file.reload(new.agent.metrics_file.as_deref());
    }
}
