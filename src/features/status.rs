//! The status file (`[agent] status_file`): the service's last Nagios line, its
//! state, when the cycle read the host and the interval (`report::status`),
//! replaced whole each cycle, mode 0644, for `--status` to repeat to NRPE or
//! cron running as another user. Only the service writes it: a `--once` run has
//! its own line, and one beside the service must not speak for it. SIGUSR1
//! writes it again (the same cycle's line).

use super::outfile::OutFile;
use super::{Cx, Feature};
use crate::config::Config;
use crate::report::{self, status};

pub struct StatusFile {
    file: OutFile,
    /// The last cycle's line and the file's text (their storage reused).
    line: String,
    text: String,
}

impl Default for StatusFile {
    fn default() -> StatusFile {
        StatusFile {
            file: OutFile::new("status_file"),
            line: String::new(),
            text: String::new(),
        }
    }
}

impl Feature for StatusFile {
    fn name(&self) -> &'static str {
        "status_file"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        !cx.once && cx.cfg.agent.status_file.is_some()
    }

    /// Temporary files a crash left beside it.
    fn load(&mut self, cx: &mut Cx) {
        let path = cx.cfg.agent.status_file.as_deref();
        self.file.remove_stale_temps(path, cx.log);
    }

    fn step(&mut self, cx: &mut Cx) {
        let relief = cx.cfg.relief.enabled.then_some(&cx.cfg.relief);
        let state = report::status_line(&mut self.line, cx.metrics, cx.reading, relief);
        let told = status::Told {
            saved_ns: cx.reading.wall_ns,
            interval_ns: cx.cfg.agent.interval.as_nanos() as u64,
            state,
            line: &self.line,
        };
        status::format(&mut self.text, &told);
        self.write(cx);
    }

    fn reload(&mut self, _old: &Config, new: &Config) {
        self.file.reload(new.agent.status_file.as_deref());
    }

    /// Says where it writes, and writes the last cycle's text again.
    fn status(&mut self, cx: &mut Cx) {
        let written = self.write(cx);
        let cfg = cx.cfg;
        let e = cx.status(self.name());
        let e = match cfg.agent.status_file.as_deref() {
            Some(p) => e.path("path", p),
            None => e,
        };
        e.str("written", if written { "yes" } else { "no" }).emit();
    }
}

impl StatusFile {
    /// Writes the text of the last cycle, if there was one; returns whether it did.
    fn write(&mut self, cx: &mut Cx) -> bool {
        match cx.cfg.agent.status_file.as_deref() {
            Some(path) if !self.text.is_empty() => {
                self.file.write(path, self.text.as_bytes(), cx.log)
            }
            _ => false,
        }
    }
}
