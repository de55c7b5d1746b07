//! Which task runs next: a pure state machine over a [`JobGraph`], with no I/O and no clocks.
//!
//! The executor asks [`Scheduler::next_task`] whenever a slot is free and reports every outcome
//! back; the scheduler never waits for anything itself. A stage's tasks are offered only once all
//! of its parent stages are complete. A failure that [`TaskFailure::retryable`] says is worth it
//! is retried up to [`MAX_ATTEMPTS`] times; any other failure fails the action at once (a panic
//! or a bad row would only fail again), and no further task is offered.

use crate::stages::{JobGraph, StageId};
use std::collections::VecDeque;

/// Attempts per task before a retryable failure fails the action.
pub const MAX_ATTEMPTS: u32 = 4;

/// One attempt at one partition of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// The stage.
    pub stage: StageId,
    /// The partition.
    pub partition: u32,
    /// 0 for the first attempt.
    pub attempt: u32,
}

/// A task's failure as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct TaskFailure {
    /// What happened, for the user.
    pub message: String,
    /// Whether another attempt could succeed.
    pub retryable: bool,
}

/// Where the action stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionState {
    /// Tasks remain to run or are running.
    Running,
    /// Every task of every stage succeeded.
    Succeeded,
    /// The action failed; running tasks may still be finishing.
    Failed(String),
}

struct StageProgress {
    parents: Vec<StageId>,
    pending: VecDeque<u32>,
    running: usize,
    done: Vec<bool>,
    done_count: usize,
    attempts: Vec<u32>,
}

/// The scheduling state of one action.
pub struct Scheduler {
    stages: Vec<StageProgress>,
    failure: Option<String>,
}

impl Scheduler {
    /// Start scheduling `graph`.
    pub fn new(graph: &JobGraph) -> Scheduler {
        let stages = graph
            .stages
            .iter()
            .map(|s| StageProgress {
                parents: s.parents.clone(),
                pending: (0..s.partitions).collect(),
                running: 0,
                done: vec![false; s.partitions as usize],
                done_count: 0,
                attempts: vec![0; s.partitions as usize],
            })
            .collect();
        Scheduler { stages, failure: None }
    }

    fn stage_complete(&self, stage: StageId) -> bool {
        let s = &self.stages[stage];
        s.done_count == s.done.len()
    }

    /// The next task to run, if one is ready; it counts as running until reported.
    pub fn next_task(&mut self) -> Option<TaskId> {
        if self.failure.is_some() {
            return None;
        }
        let ready = (0..self.stages.len()).find(|&i| {
            !self.stages[i].pending.is_empty()
                && self.stages[i].parents.iter().all(|&p| self.stage_complete(p))
        })?;
        let s = &mut self.stages[ready];
        let partition = s.pending.pop_front()?;
        s.running += 1;
        Some(TaskId { stage: ready, partition, attempt: s.attempts[partition as usize] })
    }

    /// `task` completed.
    pub fn succeeded(&mut self, task: TaskId) {
        let s = &mut self.stages[task.stage];
        s.running -= 1;
        let done = &mut s.done[task.partition as usize];
        if !*done {
            *done = true;
            s.done_count += 1;
        }
    }

    /// `task` failed.
    pub fn failed(&mut self, task: TaskId, failure: &TaskFailure) {
        let s = &mut self.stages[task.stage];
        s.running -= 1;
        let attempts = &mut s.attempts[task.partition as usize];
        *attempts += 1;
        if failure.retryable && *attempts < MAX_ATTEMPTS {
            s.pending.push_back(task.partition);
        } else if self.failure.is_none() {
            let tries = if failure.retryable {
                format!(" (after {MAX_ATTEMPTS} attempts)")
            } else {
                String::new()
            };
            self.failure = Some(format!(
                "stage {} task {} failed{tries}: {}",
                task.stage, task.partition, failure.message
            ));
        }
    }

    /// The outputs of these completed tasks of `stage` were lost (their node died): run them
    /// again. Tasks of later stages that need them wait until they are back.
    pub fn outputs_lost(&mut self, stage: StageId, partitions: &[u32]) {
        let s = &mut self.stages[stage];
        for &p in partitions {
            let done = &mut s.done[p as usize];
            if *done {
                *done = false;
                s.done_count -= 1;
                s.pending.push_back(p);
            }
        }
    }

    /// Where the action stands.
    pub fn state(&self) -> ActionState {
        if let Some(f) = &self.failure {
            return ActionState::Failed(f.clone());
        }
        if (0..self.stages.len()).all(|i| self.stage_complete(i)) {
            ActionState::Succeeded
        } else {
            ActionState::Running
        }
    }

    /// Tasks handed out and not yet reported.
    pub fn running(&self) -> usize {
        self.stages.iter().map(|s| s.running).sum()
    }

    /// Completed and total tasks of `stage`.
    pub fn progress(&self, stage: StageId) -> (usize, usize) {
        let s = &self.stages[stage];
        (s.done_count, s.done.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::{Stage, StageInput, StageOutput};
    use weft::abi::GuestTask;
    use weft::plan::{Call, FnRef};

    fn stage(partitions: u32, parents: Vec<StageId>) -> Stage {
        let call = Call { label: "x".into(), func: FnRef(1), arg: vec![] };
        Stage {
            guest: GuestTask { source: call.clone(), ops: vec![], sink: call, buckets: 0 },
            input: StageInput::Inline(vec![]),
            output: StageOutput::Driver,
            partitions,
            parents,
        }
    }

    fn two_stages() -> Scheduler {
        Scheduler::new(&JobGraph { stages: vec![stage(2, vec![]), stage(3, vec![0])] })
    }

    #[test]
    fn a_child_stage_waits_for_all_of_its_parent() {
        let mut s = two_stages();
        let a = s.next_task().unwrap();
        let b = s.next_task().unwrap();
        assert_eq!((a.stage, b.stage), (0, 0));
        assert_eq!(s.next_task(), None, "stage 1 must wait for stage 0");
        s.succeeded(a);
        assert_eq!(s.next_task(), None);
        s.succeeded(b);
        let mut reduce = Vec::new();
        while let Some(t) = s.next_task() {
            assert_eq!(t.stage, 1);
            reduce.push(t);
        }
        assert_eq!(reduce.len(), 3);
        assert_eq!(s.state(), ActionState::Running);
        reduce.into_iter().for_each(|t| s.succeeded(t));
        assert_eq!(s.state(), ActionState::Succeeded);
        assert_eq!(s.running(), 0);
    }

    #[test]
    fn retryable_failures_are_retried_then_fail_the_action() {
        let mut s = Scheduler::new(&JobGraph { stages: vec![stage(1, vec![])] });
        let lost = TaskFailure { message: "node lost".into(), retryable: true };
        for attempt in 0..MAX_ATTEMPTS {
            let t = s.next_task().unwrap();
            assert_eq!(t.attempt, attempt);
            s.failed(t, &lost);
        }
        assert_eq!(s.next_task(), None);
        match s.state() {
            ActionState::Failed(m) => {
                assert!(m.contains("after 4 attempts") && m.contains("node lost"), "{m}")
            }
            other => panic!("expected failure, got {other:?}"),
        }
    }

    #[test]
    fn lost_map_outputs_are_recomputed_before_the_child_stage_goes_on() {
        let mut s = two_stages();
        let (a, b) = (s.next_task().unwrap(), s.next_task().unwrap());
        s.succeeded(a);
        s.succeeded(b);
        let reduce = s.next_task().unwrap();
        assert_eq!(reduce.stage, 1);
        // The node holding map partition 1 died; the reduce task that was fetching fails.
        s.outputs_lost(0, &[1]);
        s.failed(reduce, &TaskFailure { message: "fetch failed".into(), retryable: true });
        let again = s.next_task().unwrap();
        assert_eq!((again.stage, again.partition), (0, 1));
        assert_eq!(s.next_task(), None, "the reduce stage waits for the recomputed map output");
        s.succeeded(again);
        let mut rest = Vec::new();
        while let Some(t) = s.next_task() {
            rest.push(t);
        }
        assert_eq!(rest.len(), 3);
        assert!(rest.iter().any(|t| t.partition == reduce.partition && t.attempt == 1));
        rest.into_iter().for_each(|t| s.succeeded(t));
        assert_eq!(s.state(), ActionState::Succeeded);
    }

    #[test]
    fn a_deterministic_failure_fails_at_once_and_stops_new_tasks() {
        let mut s = two_stages();
        let a = s.next_task().unwrap();
        let b = s.next_task().unwrap();
        s.failed(a, &TaskFailure { message: "guest panicked".into(), retryable: false });
        assert_eq!(s.next_task(), None);
        assert_eq!(s.running(), 1);
        s.succeeded(b);
        assert_eq!(s.state(), ActionState::Failed("stage 0 task 0 failed: guest panicked".into()));
    }
}
