//! How `weft run` shows an action: a progress bar over its tasks on a terminal (nothing when
//! stderr is not one), and the job's log lines — task output, warnings, retries — on stderr.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use weft_coordinator::action::{ActionEvent, ActionObserver};

/// The observer of `weft run`.
#[derive(Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    stages: Vec<(String, u32)>,
}

impl Progress {
    fn message(&self, stage: usize) -> String {
        let describe = self.stages.get(stage).map(|s| s.0.as_str()).unwrap_or_default();
        format!("stage {}/{}: {describe}", stage + 1, self.stages.len())
    }
}

impl ActionObserver for Progress {
    fn event(&mut self, event: &ActionEvent) {
        match event {
            ActionEvent::Planned(stages) => {
                self.stages = stages.clone();
                let total = stages.iter().map(|s| u64::from(s.1)).sum();
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:25}] {pos}/{len} tasks, {elapsed}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(self.message(0));
                self.bar = Some(bar);
            }
            ActionEvent::TaskDone { .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            ActionEvent::StageDone { stage, stages, .. } => {
                if stage + 1 < *stages {
                    let message = self.message(stage + 1);
                    if let Some(bar) = &self.bar {
                        bar.set_message(message);
                    }
                }
            }
            ActionEvent::Log(line) => match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            },
            ActionEvent::Ended => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
