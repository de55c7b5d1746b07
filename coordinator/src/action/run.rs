//! The loop that connects an [`ActionRun`] to an [`Executor`]: launch what is ready on the
//! slots the executor grants, hand every event to the action, pass what it has to say to an
//! [`ActionObserver`], stop when it is finished. No decision is made here.

use super::{ActionEvent, ActionRun};
use crate::executor::Executor;
use std::time::{Duration, Instant};
use weft_abi::plan::ActionOutput;

/// How long an action waits for somewhere to run (no node at all) before failing.
pub const NO_NODES_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the loop looks again when nothing happens (slots freed elsewhere are announced, so
/// this only bounds how late a missed announcement is noticed).
const POLL: Duration = Duration::from_millis(200);

/// Someone following an action: the progress bar of `weft run`, a cluster job's log.
pub trait ActionObserver {
    /// Something happened.
    fn event(&mut self, event: &ActionEvent);
}

/// Run `run` on `executor` until it is finished and return its result; its events go to
/// `observer`.
pub fn run_action(
    executor: &mut dyn Executor,
    observer: &mut dyn ActionObserver,
    mut run: ActionRun,
) -> Result<ActionOutput, String> {
    drive(executor, observer, &mut run);
    run.finish()
}

/// Run `run` on `executor` until it is finished (then take its result with
/// [`ActionRun::finish`]); its events go to `observer`.
pub fn drive(executor: &mut dyn Executor, observer: &mut dyn ActionObserver, run: &mut ActionRun) {
    let mut nowhere_since: Option<Instant> = None;
    loop {
        while run.has_ready_task() {
            let Some(slot) = executor.try_reserve() else { break };
            match run.next_task() {
                Some(task) => executor.launch(slot, task),
                None => executor.unreserve(slot),
            }
        }
        if !run.has_ready_task() {
            executor.stop_waiting();
        }
        drain(run, observer);
        if run.is_finished() {
            break;
        }
        if run.running() == 0 && executor.capacity() == 0 {
            let since = *nowhere_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= NO_NODES_TIMEOUT {
                run.fail(format!("no node of the cluster was available for {NO_NODES_TIMEOUT:?}"));
                drain(run, observer);
                break;
            }
        } else {
            nowhere_since = None;
        }
        match executor.next_event(POLL) {
            Ok(Some(event)) => run.on_event(event),
            Ok(None) => {}
            Err(e) => {
                run.fail(e.to_string());
                drain(run, observer);
                break;
            }
        }
    }
    executor.stop_waiting();
    observer.event(&ActionEvent::Ended);
}

fn drain(run: &mut ActionRun, observer: &mut dyn ActionObserver) {
    while let Some(event) = run.poll_event() {
        observer.event(&event);
    }
}
