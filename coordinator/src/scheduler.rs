//! Which task of an action runs next: a pure state machine over the stages of one action, with
//! no I/O and no clocks.
//!
//! The action loop asks [`Scheduler::next_task`] whenever it has a slot and reports every outcome
//! back; the scheduler never waits for anything itself. A stage's tasks are offered only once all
//! of its parent stages are complete. A failure whose kind says it is worth it is retried, up to
//! [`MAX_ATTEMPTS`] attempts of the same task; any other failure fails the action at once (a
//! panic or a bad row would only fail again), and no further task is offered.
//!
//! Every offered task is an *attempt*, numbered per partition. An outcome is accepted only for an
//! attempt that is running; anything else — an attempt that was already reported, an attempt of
//! another action — is recognised as stale, so that it can never be counted twice. Some failures
//! do not count against a task's attempts: a node that was full did not run it, and a task that
//! could not fetch its input failed for its input's sake. Map outputs that are lost send their
//! (complete) stage back — unless nothing still needs them — and it becomes a new stage attempt
//! that runs the lost partitions again, while the stages that need them wait; a stage sent back
//! more than [`MAX_STAGE_ATTEMPTS`] times fails the action.

use crate::stages::StageId;
use std::collections::{HashMap, VecDeque};
use weft_abi::task::TaskFailure;

/// Attempts per task before a retryable failure fails the action (Spark's default).
pub const MAX_ATTEMPTS: u32 = 4;
/// Times a stage may be sent back by lost map outputs before the action fails (Spark's
/// default).
pub const MAX_STAGE_ATTEMPTS: u32 = 4;

/// A task the scheduler offers: one attempt at one partition of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempt {
    /// The stage.
    pub stage: StageId,
    /// The partition.
    pub partition: u32,
    /// 0 for the first attempt at this partition.
    pub attempt: u32,
    /// How many times the stage was sent back by lost map outputs before this attempt.
    pub stage_attempt: u32,
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
    /// Running attempts: partition → attempt number.
    running: HashMap<u32, u32>,
    done: Vec<bool>,
    done_count: usize,
    /// Attempts started per partition (numbers the next attempt).
    attempts: Vec<u32>,
    /// Failures that count against the partition's attempts.
    failures: Vec<u32>,
    stage_attempt: u32,
}

impl StageProgress {
    fn complete(&self) -> bool {
        self.done_count == self.done.len()
    }
}

/// The scheduling state of one action.
pub struct Scheduler {
    stages: Vec<StageProgress>,
    failure: Option<String>,
}

impl Scheduler {
    /// Start scheduling stages of these partition counts and parents, listed parents first.
    pub fn new(stages: impl IntoIterator<Item = (u32, Vec<StageId>)>) -> Scheduler {
        let stages = stages
            .into_iter()
            .map(|(partitions, parents)| StageProgress {
                parents,
                pending: (0..partitions).collect(),
                running: HashMap::new(),
                done: vec![false; partitions as usize],
                done_count: 0,
                attempts: vec![0; partitions as usize],
                failures: vec![0; partitions as usize],
                stage_attempt: 0,
            })
            .collect();
        Scheduler { stages, failure: None }
    }

    /// Which stages something still needs: the last one, and the parents of every needed stage
    /// that is not complete. A stage whose every reader is complete (the lineage of a cached
    /// dataset whose blocks are all kept) is not run.
    fn wanted(&self) -> Vec<bool> {
        let mut wanted = vec![false; self.stages.len()];
        if let Some(last) = wanted.last_mut() {
            *last = true;
        }
        // Stages are listed parents first, so a stage's readers are decided before it.
        for i in (0..self.stages.len()).rev() {
            if wanted[i] && !self.stages[i].complete() {
                for &p in &self.stages[i].parents {
                    wanted[p] = true;
                }
            }
        }
        wanted
    }

    fn ready_stage(&self) -> Option<StageId> {
        if self.failure.is_some() {
            return None;
        }
        let wanted = self.wanted();
        (0..self.stages.len()).find(|&i| {
            wanted[i]
                && !self.stages[i].pending.is_empty()
                && self.stages[i].parents.iter().all(|&p| self.stages[p].complete())
        })
    }

    /// Partition `partition` of `stage` is already done (a cached block kept from an earlier
    /// action): it is not offered.
    pub fn already_done(&mut self, stage: StageId, partition: u32) {
        let Some(s) = self.stages.get_mut(stage) else { return };
        if let Some(done) = s.done.get_mut(partition as usize)
            && !*done
        {
            *done = true;
            s.done_count += 1;
            s.pending.retain(|&p| p != partition);
        }
    }

    /// Whether [`next_task`](Self::next_task) would offer a task.
    pub fn has_ready_task(&self) -> bool {
        self.ready_stage().is_some()
    }

    /// The next task to run, if one is ready; it counts as running until reported.
    pub fn next_task(&mut self) -> Option<Attempt> {
        let stage = self.ready_stage()?;
        let s = &mut self.stages[stage];
        let partition = s.pending.pop_front()?;
        let attempt = s.attempts[partition as usize];
        s.attempts[partition as usize] += 1;
        s.running.insert(partition, attempt);
        Some(Attempt { stage, partition, attempt, stage_attempt: s.stage_attempt })
    }

    /// Whether this attempt is running (an outcome for it would be accepted).
    pub fn is_running(&self, stage: StageId, partition: u32, attempt: u32) -> bool {
        self.stages.get(stage).and_then(|s| s.running.get(&partition)) == Some(&attempt)
    }

    /// Take a running attempt out of the running set; false if it was not running.
    fn finish_attempt(&mut self, stage: StageId, partition: u32, attempt: u32) -> bool {
        if !self.is_running(stage, partition, attempt) {
            return false;
        }
        self.stages[stage].running.remove(&partition);
        true
    }

    /// An offered task could not be launched after all (its input was found missing): put it
    /// back without counting an attempt.
    pub fn put_back(&mut self, task: Attempt) {
        if self.finish_attempt(task.stage, task.partition, task.attempt) {
            let s = &mut self.stages[task.stage];
            s.attempts[task.partition as usize] -= 1;
            s.pending.push_front(task.partition);
        }
    }

    /// The attempt succeeded; false (and nothing changes) if it was not running.
    pub fn succeeded(&mut self, stage: StageId, partition: u32, attempt: u32) -> bool {
        if !self.finish_attempt(stage, partition, attempt) {
            return false;
        }
        let s = &mut self.stages[stage];
        let done = &mut s.done[partition as usize];
        if !*done {
            *done = true;
            s.done_count += 1;
        }
        true
    }

    /// The attempt failed; false (and nothing changes) if it was not running. Returns true when
    /// the failure was taken into account, whether it will be retried or fails the action.
    /// `counted`: whether it counts against the task's attempts (see the module doc).
    pub fn failed(
        &mut self,
        stage: StageId,
        partition: u32,
        attempt: u32,
        failure: &TaskFailure,
        counted: bool,
    ) -> bool {
        if !self.finish_attempt(stage, partition, attempt) {
            return false;
        }
        let s = &mut self.stages[stage];
        let failures = &mut s.failures[partition as usize];
        if counted {
            *failures += 1;
        }
        let retryable = failure.kind.is_retryable();
        if retryable && *failures < MAX_ATTEMPTS {
            s.pending.push_back(partition);
        } else if self.failure.is_none() {
            let tries = if retryable { format!(" {MAX_ATTEMPTS} times") } else { String::new() };
            self.failure =
                Some(format!("stage {stage} task {partition} failed{tries}: {}", failure.message));
        }
        true
    }

    /// The outputs of these completed tasks of `stage` were lost (their node died, a fetch found
    /// them gone): run them again, unless every stage that reads them is complete. Tasks of later
    /// stages that need them wait until they are back. Returns whether they will run again.
    pub fn outputs_lost(&mut self, stage: StageId, partitions: &[u32]) -> bool {
        let still_needed = self.stages.iter().any(|s| s.parents.contains(&stage) && !s.complete());
        let Some(s) = self.stages.get_mut(stage) else { return false };
        if !still_needed {
            return false;
        }
        let was_complete = s.complete();
        let mut any = false;
        for &p in partitions {
            if let Some(done) = s.done.get_mut(p as usize)
                && *done
            {
                *done = false;
                s.done_count -= 1;
                s.pending.push_back(p);
                any = true;
            }
        }
        if any && was_complete {
            s.stage_attempt += 1;
            if s.stage_attempt > MAX_STAGE_ATTEMPTS && self.failure.is_none() {
                self.failure = Some(format!(
                    "stage {stage} was computed again {} times: its map outputs kept being lost",
                    s.stage_attempt - 1
                ));
            }
        }
        any
    }

    /// Fail the action for a reason from outside the scheduler (a cancel, a broken plan).
    pub fn fail(&mut self, message: String) {
        self.failure.get_or_insert(message);
    }

    /// Where the action stands.
    pub fn state(&self) -> ActionState {
        if let Some(f) = &self.failure {
            return ActionState::Failed(f.clone());
        }
        // The last stage is what the action computes: once it is complete, nothing else is
        // needed (stages that never had to run, like a kept cache's lineage, stay as they are).
        if self.stages.last().is_none_or(StageProgress::complete) {
            ActionState::Succeeded
        } else {
            ActionState::Running
        }
    }

    /// Tasks handed out and not yet reported.
    pub fn running(&self) -> usize {
        self.stages.iter().map(|s| s.running.len()).sum()
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

    fn two_stages() -> Scheduler {
        Scheduler::new([(2, vec![]), (3, vec![0])])
    }

    fn ok(s: &mut Scheduler, t: Attempt) -> bool {
        s.succeeded(t.stage, t.partition, t.attempt)
    }

    fn fail(s: &mut Scheduler, t: Attempt, failure: &TaskFailure) -> bool {
        s.failed(t.stage, t.partition, t.attempt, failure, true)
    }

    #[test]
    fn a_child_stage_waits_for_all_of_its_parent() {
        let mut s = two_stages();
        let a = s.next_task().unwrap();
        let b = s.next_task().unwrap();
        assert_eq!((a.stage, b.stage), (0, 0));
        assert_eq!(s.next_task(), None, "stage 1 must wait for stage 0");
        assert!(ok(&mut s, a));
        assert_eq!(s.next_task(), None);
        assert!(ok(&mut s, b));
        let mut reduce = Vec::new();
        while let Some(t) = s.next_task() {
            assert_eq!(t.stage, 1);
            reduce.push(t);
        }
        assert_eq!(reduce.len(), 3);
        assert_eq!(s.state(), ActionState::Running);
        reduce.into_iter().for_each(|t| assert!(ok(&mut s, t)));
        assert_eq!(s.state(), ActionState::Succeeded);
        assert_eq!(s.running(), 0);
    }

    #[test]
    fn retryable_failures_are_retried_then_fail_the_action() {
        let mut s = Scheduler::new([(1, vec![])]);
        let lost = TaskFailure::infrastructure("node lost");
        for attempt in 0..MAX_ATTEMPTS {
            let t = s.next_task().unwrap();
            assert_eq!(t.attempt, attempt);
            assert!(fail(&mut s, t, &lost));
        }
        assert_eq!(s.next_task(), None);
        match s.state() {
            ActionState::Failed(m) => assert!(m.contains("failed 4 times: node lost"), "{m}"),
            other => panic!("expected failure, got {other:?}"),
        }
    }

    #[test]
    fn lost_map_outputs_are_recomputed_before_the_child_stage_goes_on() {
        let mut s = two_stages();
        let (a, b) = (s.next_task().unwrap(), s.next_task().unwrap());
        ok(&mut s, a);
        ok(&mut s, b);
        let reduce = s.next_task().unwrap();
        assert_eq!((reduce.stage, reduce.stage_attempt), (1, 0));
        // The node holding map partition 1 died; the reduce task that was fetching fails.
        s.outputs_lost(0, &[1]);
        fail(&mut s, reduce, &TaskFailure::infrastructure("fetch failed"));
        let again = s.next_task().unwrap();
        assert_eq!((again.stage, again.partition, again.stage_attempt), (0, 1, 1));
        assert_eq!(s.next_task(), None, "the reduce stage waits for the recomputed map output");
        ok(&mut s, again);
        let mut rest = Vec::new();
        while let Some(t) = s.next_task() {
            rest.push(t);
        }
        assert_eq!(rest.len(), 3);
        assert!(rest.iter().any(|t| t.partition == reduce.partition && t.attempt == 1));
        rest.into_iter().for_each(|t| assert!(ok(&mut s, t)));
        assert_eq!(s.state(), ActionState::Succeeded);
    }

    #[test]
    fn a_deterministic_failure_fails_at_once_and_stops_new_tasks() {
        let mut s = two_stages();
        let a = s.next_task().unwrap();
        let b = s.next_task().unwrap();
        fail(&mut s, a, &TaskFailure::job("guest panicked"));
        assert_eq!(s.next_task(), None);
        assert_eq!(s.running(), 1);
        ok(&mut s, b);
        assert_eq!(s.state(), ActionState::Failed("stage 0 task 0 failed: guest panicked".into()));
    }

    #[test]
    fn outcomes_of_attempts_that_are_not_running_are_refused() {
        let mut s = Scheduler::new([(2, vec![])]);
        let t = s.next_task().unwrap();
        // An attempt never offered, and another partition's, change nothing.
        assert!(!s.succeeded(0, t.partition, t.attempt + 1));
        assert!(!s.succeeded(0, 1, 0));
        assert!(!s.failed(7, 0, 0, &TaskFailure::job("x"), true));
        assert!(ok(&mut s, t));
        // The same outcome twice is counted once.
        assert!(!ok(&mut s, t));
        assert_eq!(s.progress(0), (1, 2));
        assert_eq!(s.running(), 0);
    }

    #[test]
    fn uncounted_failures_retry_without_end_and_lost_outputs_nobody_needs_are_left_lost() {
        let mut s = two_stages();
        let busy = TaskFailure { kind: weft_abi::task::FailureKind::Busy, message: "full".into() };
        for _ in 0..10 {
            let t = s.next_task().unwrap();
            assert!(s.failed(t.stage, t.partition, t.attempt, &busy, false));
        }
        assert_eq!(s.state(), ActionState::Running, "a full node is not the task's failure");
        let all: Vec<Attempt> = std::iter::from_fn(|| s.next_task()).collect();
        all.iter().for_each(|&t| assert!(ok(&mut s, t)));
        let reduce: Vec<Attempt> = std::iter::from_fn(|| s.next_task()).collect();
        reduce.iter().for_each(|&t| assert!(ok(&mut s, t)));
        assert_eq!(s.state(), ActionState::Succeeded);
        assert!(!s.outputs_lost(0, &[0]), "nothing reads stage 0 any more");
        assert_eq!(s.state(), ActionState::Succeeded);
    }

    #[test]
    fn a_stage_sent_back_too_often_fails_the_action() {
        let mut s = two_stages();
        let maps: Vec<Attempt> = std::iter::from_fn(|| s.next_task()).collect();
        maps.iter().for_each(|&t| assert!(ok(&mut s, t)));
        for round in 0..MAX_STAGE_ATTEMPTS {
            assert!(s.outputs_lost(0, &[1]), "round {round}");
            let again = s.next_task().unwrap();
            assert!(ok(&mut s, again));
        }
        assert_eq!(s.state(), ActionState::Running);
        s.outputs_lost(0, &[1]);
        match s.state() {
            ActionState::Failed(m) => assert!(m.contains("computed again 4 times"), "{m}"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_task_put_back_is_offered_again_as_the_same_attempt() {
        let mut s = Scheduler::new([(1, vec![])]);
        let t = s.next_task().unwrap();
        s.put_back(t);
        assert_eq!(s.running(), 0);
        assert_eq!(s.next_task(), Some(t));
    }
}
