//! The action loop in memory: an [`ActionRun`] driven by hand and through [`run_action`] over a
//! scripted executor, with stale outcomes, lost nodes, failed fetches, failures while tasks run,
//! and results over the limit.

use super::*;
use crate::executor::{Executor, ExecutorError, SlotGrant};
use crate::stages::{Pipe, SourceInput, Stage, StageId};
use std::collections::VecDeque;
use std::time::Duration;
use weft_abi::plan::{Call, DatasetId, FnRef};

fn call(label: &str) -> Call {
    Call { label: label.into(), func: FnRef(1), arg: vec![] }
}

fn stage(partitions: u32, pipe: Pipe, output: StageOutput, parents: Vec<StageId>) -> Stage {
    Stage { pipe, sink: call("sink"), output, partitions, parents, dataset: DatasetId(1) }
}

fn inline(batches: Vec<InlineBatch>) -> Pipe {
    Pipe::Source { decode: call("source"), input: SourceInput::Inline(batches) }
}

/// `maps` map tasks over inline input writing `buckets` buckets, then a driver stage reading them.
fn map_reduce(maps: u32, buckets: u32) -> JobGraph {
    let batches = (0..maps).map(|m| InlineBatch(vec![m as u8])).collect();
    JobGraph {
        stages: vec![
            stage(maps, inline(batches), StageOutput::Shuffle { buckets }, vec![]),
            stage(
                buckets,
                Pipe::Shuffled { read: call("read"), from: 0, buckets },
                StageOutput::Driver,
                vec![0],
            ),
        ],
    }
}

fn settings(action: u32) -> ActionSettings {
    ActionSettings {
        job: "job-1".into(),
        action,
        module_hash: "m".into(),
        limits: TaskLimits { timeout_ms: 1000, memory_bytes: 1 << 20, result_bytes: 1 << 20 },
        key: ShuffleKey("key".into()),
        staging: None,
        broadcasts: vec![],
        udfs: vec![],
    }
}

/// What a task of [`map_reduce`] produces: map task *m* puts `m + 1` bytes in every bucket (on
/// node `node`); reduce task *p* returns one batch holding the sum of its pieces' sizes and the
/// nodes it read from.
fn answer(task: &TaskSpec, node: &str) -> TaskSuccess {
    match &task.output {
        TaskOutput::Buckets { buckets, id, .. } => TaskSuccess {
            map_output: Some(MapOutput {
                id: id.clone(),
                node_id: node.into(),
                shuffle_addr: format!("{node}:1"),
                bucket_bytes: vec![u64::from(id.partition) + 1; *buckets as usize],
            }),
            ..TaskSuccess::default()
        },
        _ => {
            let TaskInput::Shuffle(read) = &task.inputs[0] else { panic!("a reduce task") };
            let sum: u64 = read.pieces.iter().map(|p| p.bytes).sum();
            TaskSuccess {
                batches: vec![Bytes::from(sum.to_le_bytes().to_vec())],
                ..Default::default()
            }
        }
    }
}

fn sums(output: &ActionOutput) -> Vec<u64> {
    output.batches.iter().map(|b| u64::from_le_bytes(b.0[..8].try_into().unwrap())).collect()
}

fn done(task: &TaskSpec, node: &str) -> ExecutorEvent {
    ExecutorEvent::Finished(TaskOutcome {
        id: task.id.clone(),
        node: node.into(),
        result: Ok(answer(task, node)),
    })
}

fn failed(task: &TaskSpec, failure: TaskFailure) -> ExecutorEvent {
    ExecutorEvent::Finished(TaskOutcome {
        id: task.id.clone(),
        node: "n1".into(),
        result: Err(failure),
    })
}

fn launch_all(run: &mut ActionRun) -> Vec<TaskSpec> {
    std::iter::from_fn(|| run.next_task()).collect()
}

#[test]
fn a_reduce_task_is_sent_only_its_own_bucket_of_every_map_output() {
    let mut run = ActionRun::new(settings(1), map_reduce(3, 2));
    for task in launch_all(&mut run) {
        run.on_event(done(&task, "n1"));
    }
    let reduces = launch_all(&mut run);
    assert_eq!(reduces.len(), 2);
    for (p, task) in reduces.iter().enumerate() {
        let TaskInput::Shuffle(read) = &task.inputs[0] else { panic!("shuffle input") };
        assert_eq!(read.bucket, p as u32);
        let sizes: Vec<u64> = read.pieces.iter().map(|piece| piece.bytes).collect();
        assert_eq!(sizes, [1, 2, 3], "one size per map output, of this bucket only");
        assert_eq!(read.key, ShuffleKey("key".into()));
    }
    for task in &reduces {
        run.on_event(done(task, "n1"));
    }
    assert!(run.is_finished());
    assert_eq!(sums(&run.finish().unwrap()), [6, 6]);
}

#[test]
fn outcomes_that_match_nothing_running_are_dropped() {
    let mut run = ActionRun::new(settings(2), map_reduce(2, 1));
    let maps = launch_all(&mut run);
    // An outcome of the previous action, for the same stage and partition.
    let mut old = maps[0].clone();
    old.id.action = 1;
    run.on_event(done(&old, "n1"));
    // A later attempt than the one running, and the same outcome twice.
    let mut later = maps[1].clone();
    later.id.attempt = 1;
    run.on_event(done(&later, "n1"));
    run.on_event(done(&maps[0], "n1"));
    run.on_event(done(&maps[0], "n1"));
    assert_eq!(run.stale_outcomes(), 3);
    assert_eq!(run.running(), 1, "only map task 0 counted as done");
    run.on_event(done(&maps[1], "n1"));
    let reduce = launch_all(&mut run);
    run.on_event(done(&reduce[0], "n1"));
    assert_eq!(sums(&run.finish().unwrap()), [3]);
}

#[test]
fn a_lost_node_s_map_outputs_are_recomputed_before_the_reduce_stage_reads() {
    let mut run = ActionRun::new(settings(1), map_reduce(3, 1));
    let maps = launch_all(&mut run);
    run.on_event(done(&maps[0], "n1"));
    run.on_event(done(&maps[1], "n2"));
    run.on_event(done(&maps[2], "n1"));
    let reduce = launch_all(&mut run);
    assert_eq!(reduce.len(), 1);
    run.on_event(ExecutorEvent::NodeLost("n2".into()));
    // The reduce task that was reading from n2 fails to fetch.
    run.on_event(failed(&reduce[0], TaskFailure::infrastructure("node n2 was lost")));
    let again = launch_all(&mut run);
    assert_eq!(again.len(), 1, "only the lost map output runs again: {again:?}");
    assert_eq!((again[0].id.stage, again[0].id.partition, again[0].id.stage_attempt), (0, 1, 1));
    run.on_event(done(&again[0], "n3"));
    let reduce = launch_all(&mut run);
    let TaskInput::Shuffle(read) = &reduce[0].inputs[0] else { panic!() };
    let nodes: Vec<&str> = read.pieces.iter().map(|p| p.node_id.as_str()).collect();
    assert_eq!(nodes, ["n1", "n3", "n1"]);
    assert_eq!(reduce[0].id.attempt, 1);
    run.on_event(done(&reduce[0], "n1"));
    assert_eq!(sums(&run.finish().unwrap()), [6]);
}

#[test]
fn a_map_output_reported_by_a_node_already_lost_is_not_trusted() {
    let mut run = ActionRun::new(settings(1), map_reduce(1, 1));
    let maps = launch_all(&mut run);
    run.on_event(ExecutorEvent::NodeLost("n2".into()));
    run.on_event(done(&maps[0], "n2"));
    let again = launch_all(&mut run);
    assert_eq!((again[0].id.stage, again[0].id.attempt), (0, 1), "the map task runs again");
}

#[test]
fn a_failed_fetch_recomputes_what_the_node_held_and_never_reads_a_partial_bucket() {
    let mut run = ActionRun::new(settings(1), map_reduce(3, 1));
    let maps = launch_all(&mut run);
    run.on_event(done(&maps[0], "n1"));
    run.on_event(done(&maps[1], "n2"));
    run.on_event(done(&maps[2], "n2"));
    let reduce = launch_all(&mut run);
    let TaskInput::Shuffle(read) = &reduce[0].inputs[0] else { panic!() };
    let gone = LostOutput { map: read.pieces[1].map.clone(), node: "n2".into() };
    let fetch = TaskFailure {
        kind: FailureKind::FetchFailed(gone.clone()),
        message: "no map output".into(),
    };
    run.on_event(failed(&reduce[0], fetch.clone()));
    // The reduce stage waits: what comes next is what n2 held, and only that.
    let next = launch_all(&mut run);
    let partitions: Vec<(u32, u32)> = next.iter().map(|t| (t.id.stage, t.id.partition)).collect();
    assert_eq!(partitions, [(0, 1), (0, 2)]);
    run.on_event(done(&next[0], "n3"));
    run.on_event(done(&next[1], "n3"));
    let reduce = launch_all(&mut run);
    let TaskInput::Shuffle(read) = &reduce[0].inputs[0] else { panic!() };
    assert_eq!(read.pieces.len(), 3, "every map output is in the input");
    // A failure that names the old copy on n2 forgets nothing: the copy now is on n3, so the
    // reduce task simply runs again.
    run.on_event(failed(&reduce[0], fetch));
    let again = launch_all(&mut run);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id.stage, again[0].id.attempt), (1, 2));
    run.on_event(done(&again[0], "n1"));
    assert_eq!(sums(&run.finish().unwrap()), [6]);
}

#[test]
fn a_success_without_the_map_output_its_stage_needs_is_a_failure() {
    let mut run = ActionRun::new(settings(1), map_reduce(1, 2));
    let maps = launch_all(&mut run);
    let empty = TaskOutcome {
        id: maps[0].id.clone(),
        node: "n1".into(),
        result: Ok(TaskSuccess::default()),
    };
    run.on_event(ExecutorEvent::Finished(empty));
    let again = launch_all(&mut run);
    assert_eq!((again[0].id.stage, again[0].id.attempt), (0, 1));
    assert!(!run.is_finished());
}

#[test]
fn results_over_the_limit_fail_the_action_at_once() {
    let mut s = settings(1);
    // Each result below costs 6 bytes and the batch's overhead.
    s.limits.result_bytes = 2 * (6 + BATCH_OVERHEAD) + 1;
    let graph = JobGraph { stages: vec![stage(3, inline(vec![]), StageOutput::Driver, vec![])] };
    let mut run = ActionRun::new(s, graph);
    let big = |task: &TaskSpec| {
        ExecutorEvent::Finished(TaskOutcome {
            id: task.id.clone(),
            node: "n1".into(),
            result: Ok(TaskSuccess {
                batches: vec![Bytes::from(vec![0; 6])],
                ..Default::default()
            }),
        })
    };
    // A task is given what is left of the action's budget when it is launched.
    let first = run.next_task().unwrap();
    assert_eq!(first.limits.result_bytes, 2 * (6 + BATCH_OVERHEAD) + 1);
    run.on_event(big(&first));
    let rest = launch_all(&mut run);
    assert!(rest.iter().all(|t| t.limits.result_bytes == 6 + BATCH_OVERHEAD + 1), "{rest:?}");
    run.on_event(big(&rest[0]));
    assert!(!run.is_finished());
    run.on_event(big(&rest[1]));
    assert!(run.is_finished(), "three results are over the limit");
    let err = run.finish().unwrap_err();
    assert!(err.contains("results exceed"), "{err}");
}

/// An executor that answers every task with [`answer`] on node `n1`, but holds outcomes back
/// as the test says.
struct Scripted {
    slots: u32,
    running: u32,
    held: VecDeque<TaskSpec>,
    queued: VecDeque<ExecutorEvent>,
    /// Tasks whose outcome is never delivered by `next_event` (still running).
    stuck: Vec<TaskSpec>,
    /// Fail tasks of this stage deterministically.
    fail_stage: Option<u32>,
    /// Keep the outcome of tasks of this stage and partition running.
    hold: Option<(u32, u32)>,
    released: Vec<u32>,
    launched: usize,
}

impl Scripted {
    fn new(slots: u32) -> Scripted {
        Scripted {
            slots,
            running: 0,
            held: VecDeque::new(),
            queued: VecDeque::new(),
            stuck: Vec::new(),
            fail_stage: None,
            hold: None,
            released: Vec::new(),
            launched: 0,
        }
    }
}

impl Executor for Scripted {
    fn capacity(&self) -> u32 {
        self.slots
    }

    fn try_reserve(&mut self) -> Option<SlotGrant> {
        (self.running < self.slots).then(|| {
            self.running += 1;
            SlotGrant { node: "n1".into() }
        })
    }

    fn unreserve(&mut self, _slot: SlotGrant) {
        self.running -= 1;
    }

    fn launch(&mut self, _slot: SlotGrant, task: TaskSpec) {
        self.launched += 1;
        if self.hold == Some((task.id.stage, task.id.partition)) {
            self.stuck.push(task);
        } else {
            self.held.push_back(task);
        }
    }

    fn next_event(&mut self, _timeout: Duration) -> Result<Option<ExecutorEvent>, ExecutorError> {
        if let Some(event) = self.queued.pop_front() {
            return Ok(Some(event));
        }
        let Some(task) = self.held.pop_front() else { return Ok(None) };
        self.running -= 1;
        if self.fail_stage == Some(task.id.stage) {
            return Ok(Some(failed(&task, TaskFailure::job("guest panicked: unlucky"))));
        }
        Ok(Some(done(&task, "n1")))
    }

    fn action_ended(&mut self, _job: &str, action: u32) {
        self.released.push(action);
    }

    fn release_cached(&mut self, _job: &str, _dataset: DatasetId) {}
}

struct Log(Vec<ActionEvent>);

impl ActionObserver for Log {
    fn event(&mut self, event: &ActionEvent) {
        self.0.push(event.clone());
    }
}

#[test]
fn an_action_that_fails_while_tasks_run_returns_and_their_outcomes_never_reach_the_next() {
    let mut executor = Scripted::new(4);
    executor.fail_stage = Some(0);
    executor.hold = Some((0, 2));
    let mut log = Log(Vec::new());
    let first = run_action(&mut executor, &mut log, ActionRun::new(settings(1), map_reduce(3, 2)));
    let err = first.unwrap_err();
    assert!(err.contains("guest panicked: unlucky"), "{err}");
    assert_eq!(executor.stuck.len(), 1, "a task of the failed action is still running");
    // The next action starts; the old task's outcome arrives in the middle of it.
    executor.fail_stage = None;
    executor.hold = None;
    let stale = executor.stuck.pop().unwrap();
    executor.queued.push_back(done(&stale, "n1"));
    let mut log = Log(Vec::new());
    let second =
        run_action(&mut executor, &mut log, ActionRun::new(settings(2), map_reduce(3, 2))).unwrap();
    assert_eq!(sums(&second), [6, 6]);
    assert!(log.0.iter().any(|e| matches!(e, ActionEvent::StageDone { stage: 1, stages: 2, .. })));
}

#[test]
fn the_loop_launches_no_more_tasks_than_the_executor_grants_slots() {
    let mut executor = Scripted::new(2);
    let mut log = Log(Vec::new());
    let output = run_action(&mut executor, &mut log, ActionRun::new(settings(1), map_reduce(5, 3)));
    assert_eq!(sums(&output.unwrap()), [15, 15, 15]);
    assert_eq!(executor.launched, 8);
    assert_eq!(executor.running, 0, "every reserved slot was given back");
    let planned = log.0.iter().find_map(|e| match e {
        ActionEvent::Planned(stages) => Some(stages.len()),
        _ => None,
    });
    assert_eq!(planned, Some(2));
}

#[test]
fn an_executor_that_gives_up_fails_the_action_with_its_reason() {
    struct Cancelled;
    impl Executor for Cancelled {
        fn capacity(&self) -> u32 {
            1
        }
        fn try_reserve(&mut self) -> Option<SlotGrant> {
            Some(SlotGrant { node: "n1".into() })
        }
        fn unreserve(&mut self, _slot: SlotGrant) {}
        fn launch(&mut self, _slot: SlotGrant, _task: TaskSpec) {}
        fn next_event(&mut self, _t: Duration) -> Result<Option<ExecutorEvent>, ExecutorError> {
            Err(ExecutorError::Cancelled)
        }
        fn action_ended(&mut self, _job: &str, _action: u32) {}

        fn release_cached(&mut self, _job: &str, _dataset: DatasetId) {}
    }
    let mut log = Log(Vec::new());
    let err = run_action(&mut Cancelled, &mut log, ActionRun::new(settings(1), map_reduce(1, 1)))
        .unwrap_err();
    assert_eq!(err, "the job was cancelled");
}

#[test]
fn accumulator_updates_count_once_per_partition_through_recomputations_and_duplicates() {
    use weft_abi::guest::{AccumulatorUpdate, AccumulatorValue};
    let counted = |task: &TaskSpec, node: &str, n: u64| {
        let mut success = answer(task, node);
        success.accumulators = vec![AccumulatorUpdate { id: 7, value: AccumulatorValue::U64(n) }];
        ExecutorEvent::Finished(TaskOutcome {
            id: task.id.clone(),
            node: node.into(),
            result: Ok(success),
        })
    };
    let mut run = ActionRun::new(settings(1), map_reduce(3, 2));
    let maps = launch_all(&mut run);
    run.on_event(counted(&maps[0], "n1", 1));
    run.on_event(counted(&maps[1], "n2", 1));
    run.on_event(counted(&maps[2], "n1", 1));
    // A second report of the same attempt is dropped with its updates.
    run.on_event(counted(&maps[2], "n1", 1));
    let reduce = launch_all(&mut run);
    // n2 is lost: its map output is computed again, and reports its updates again.
    run.on_event(ExecutorEvent::NodeLost("n2".into()));
    run.on_event(failed(&reduce[0], TaskFailure::infrastructure("node n2 was lost")));
    run.on_event(failed(&reduce[1], TaskFailure::infrastructure("node n2 was lost")));
    let again = launch_all(&mut run);
    assert_eq!(again.len(), 1);
    run.on_event(counted(&again[0], "n3", 1));
    for task in launch_all(&mut run) {
        run.on_event(counted(&task, "n1", 10));
    }
    let output = run.finish().unwrap();
    assert_eq!(
        output.accumulators,
        [AccumulatorUpdate { id: 7, value: AccumulatorValue::U64(23) }]
    );
}

/// Two map tasks shuffled into three buckets, a cached dataset (dataset 9) made of them, and a
/// driver stage reading its blocks.
fn cached_graph() -> JobGraph {
    let batches = (0..2).map(|m| InlineBatch(vec![m])).collect();
    let shuffled = Pipe::Shuffled { read: call("read"), from: 0, buckets: 3 };
    let blocks = Pipe::Cached { read: call("block"), from: 1, partitions: 3 };
    JobGraph {
        stages: vec![
            stage(2, inline(batches), StageOutput::Shuffle { buckets: 3 }, vec![]),
            stage(3, shuffled, StageOutput::Cache { dataset: DatasetId(9) }, vec![0]),
            stage(3, blocks, StageOutput::Driver, vec![1]),
        ],
    }
}

#[test]
fn kept_blocks_are_read_without_their_lineage_and_lost_ones_are_computed_again() {
    // The first action computes everything and keeps the blocks under the job's cache action.
    let mut first = ActionRun::new(settings(1), cached_graph());
    for _ in 0..3 {
        for task in launch_all(&mut first) {
            let node = if task.id.partition == 0 { "n1" } else { "n2" };
            first.on_event(done(&task, node));
        }
    }
    assert_eq!(first.blocks_computed(), 3);
    let kept: HashMap<DatasetId, Vec<Option<MapOutput>>> =
        first.cached_blocks().into_iter().collect();
    let ids: Vec<_> = kept[&DatasetId(9)].iter().flatten().map(|m| m.id.clone()).collect();
    assert!(ids.iter().all(|id| (id.action, id.stage) == (CACHE_ACTION, 9)), "{ids:?}");
    first.finish().unwrap();

    // The second reads them: only its own stage runs, each task reading one block.
    let mut second = ActionRun::new(settings(2), cached_graph());
    assert_eq!(second.reuse_cached(&kept), 3);
    let reads = launch_all(&mut second);
    assert_eq!(reads.iter().map(|t| t.id.stage).collect::<Vec<_>>(), [2, 2, 2]);
    let TaskInput::Shuffle(read) = &reads[1].inputs[0] else { panic!("a block read") };
    assert_eq!((read.bucket, read.pieces.len(), read.pieces[0].map.partition), (0, 1, 1));
    second.on_event(done(&reads[0], "n1"));
    // n2 goes with blocks 1 and 2: they are computed again, from the map stage up.
    second.on_event(ExecutorEvent::NodeLost("n2".into()));
    for task in &reads[1..] {
        let lost = read.pieces[0].lost();
        second.on_event(failed(
            task,
            TaskFailure { kind: FailureKind::FetchFailed(lost), message: "gone".into() },
        ));
    }
    let maps = launch_all(&mut second);
    assert_eq!(maps.iter().map(|t| t.id.stage).collect::<Vec<_>>(), [0, 0]);
    maps.iter().for_each(|t| second.on_event(done(t, "n3")));
    let blocks = launch_all(&mut second);
    assert_eq!(
        blocks.iter().map(|t| (t.id.stage, t.id.partition)).collect::<Vec<_>>(),
        [(1, 1), (1, 2)]
    );
    blocks.iter().for_each(|t| second.on_event(done(t, "n3")));
    launch_all(&mut second).iter().for_each(|t| second.on_event(done(t, "n3")));
    assert_eq!(second.blocks_computed(), 2);
    let nodes: Vec<_> =
        second.cached_blocks()[0].1.iter().flatten().map(|m| m.node_id.clone()).collect();
    assert_eq!(nodes, ["n1", "n3", "n3"]);
    assert_eq!(second.finish().unwrap().batches.len(), 3);
}
