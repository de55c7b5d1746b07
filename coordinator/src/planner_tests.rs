//! The planner on small logical plans: stage cuts, bucket counts, narrow dependencies, bounds.

use super::*;
use weft_abi::plan::{DatasetId, FnRef, InlineBatch, Plan, ShuffleSide};
use weft_storage::DataDir;

fn call(label: &str) -> Call {
    Call { label: label.into(), func: FnRef(1), arg: Vec::new() }
}

fn node(dataset: u64, parents: Vec<NodeIndex>, kind: NodeKind) -> PlanNode {
    PlanNode { dataset: DatasetId(dataset), parents, kind, cache: None }
}

fn inline(partitions: usize) -> NodeKind {
    NodeKind::Source {
        source: Source::Inline { partitions: vec![InlineBatch(vec![]); partitions] },
        decode: call("parallelize"),
    }
}

fn narrow(label: &str, keeps_partitioning: bool) -> NodeKind {
    NodeKind::Narrow { op: call(label), keeps_partitioning }
}

fn shuffle(sides: usize, partitions: Option<u32>, merge: &str) -> NodeKind {
    let side = ShuffleSide { write: call("w"), read: call("r"), local: None };
    NodeKind::Shuffle {
        partitions,
        sides: vec![side; sides],
        merge: call(merge),
        hash_partitioned: true,
    }
}

fn request(nodes: Vec<PlanNode>) -> ActionRequest {
    let target = nodes.len() as u32 - 1;
    ActionRequest {
        plan: Plan { nodes },
        target,
        sink: call("collect"),
        kind: ActionKind::ToDriver,
        unpersist: vec![],
        broadcasts: vec![],
    }
}

fn plan(nodes: Vec<PlanNode>) -> JobGraph {
    let dir = tempfile::tempdir().unwrap();
    plan_stages(&request(nodes), &DataDir::new(dir.path()).unwrap(), 4, None).unwrap()
}

fn refusal(nodes: Vec<PlanNode>) -> String {
    let dir = tempfile::tempdir().unwrap();
    plan_stages(&request(nodes), &DataDir::new(dir.path()).unwrap(), 2, None)
        .unwrap_err()
        .to_string()
}

#[test]
fn narrow_nodes_fuse_and_a_shuffle_makes_a_new_stage() {
    let graph = plan(vec![
        node(1, vec![], inline(3)),
        node(2, vec![0], narrow("map", false)),
        node(3, vec![1], shuffle(1, None, "reduce")),
        node(4, vec![2], narrow("filter", true)),
    ]);
    assert_eq!(graph.stages.len(), 2);
    let (map, reduce) = (&graph.stages[0], &graph.stages[1]);
    assert_eq!((map.partitions, &map.output), (3, &StageOutput::Shuffle { buckets: 4 }));
    let (guest, _) = map.task(0);
    assert_eq!(guest.steps.len(), 2, "source and map");
    assert_eq!(guest.buckets, 4);
    assert_eq!((reduce.partitions, &reduce.parents, reduce.dataset), (4, &vec![0], DatasetId(4)));
    assert_eq!(reduce.describe(), "r → collect");
}

#[test]
fn a_shuffle_of_two_parents_reads_both_with_one_bucket_count() {
    let graph = plan(vec![
        node(1, vec![], inline(2)),
        node(2, vec![], inline(7)),
        node(3, vec![0, 1], shuffle(2, None, "cogroup")),
    ]);
    assert_eq!(graph.stages.len(), 3);
    let last = &graph.stages[2];
    assert_eq!(last.partitions, 7, "as many buckets as the widest parent");
    assert_eq!(last.parents, [0, 1]);
    for s in &graph.stages[..2] {
        assert_eq!(s.output, StageOutput::Shuffle { buckets: 7 });
    }
}

#[test]
fn a_join_of_datasets_partitioned_alike_moves_neither_again() {
    // Two reduce_by_key outputs of 5 partitions, one through a key-keeping operator, cogrouped.
    let graph = plan(vec![
        node(1, vec![], inline(3)),
        node(2, vec![0], shuffle(1, Some(5), "reduce a")),
        node(3, vec![1], narrow("map_values", true)),
        node(4, vec![], inline(2)),
        node(5, vec![3], shuffle(1, Some(5), "reduce b")),
        node(6, vec![2, 4], shuffle(2, None, "cogroup")),
    ]);
    // Two map stages and the final stage: the cogroup is no stage of its own.
    assert_eq!(graph.stages.len(), 3, "{:#?}", graph.stages);
    let last = &graph.stages[2];
    assert_eq!((last.partitions, &last.parents), (5, &vec![0, 1]));
    let (guest, inputs) = last.task(2);
    let labels: Vec<_> = guest.steps.iter().map(|s| s.call().label.as_str()).collect();
    assert_eq!(labels, ["r", "reduce a", "map_values", "r", "reduce b", "cogroup"]);
    assert_eq!(inputs.len(), 2);

    // A side whose operator may change keys, or a partition count that differs, is shuffled.
    let graph = plan(vec![
        node(1, vec![], inline(3)),
        node(2, vec![0], shuffle(1, Some(5), "reduce a")),
        node(3, vec![1], narrow("map", false)),
        node(4, vec![], inline(2)),
        node(5, vec![3], shuffle(1, Some(6), "reduce b")),
        node(6, vec![2, 4], shuffle(2, None, "cogroup")),
    ]);
    // The map stages of both reduces, the shuffle of the side that lost its partitioning, and
    // the final stage, which reads the other side in place.
    assert_eq!(graph.stages.len(), 4);
    let last = &graph.stages[3];
    assert_eq!(last.partitions, 6, "the partitioned side's count is taken");
    assert_eq!(last.parents, [2, 0], "the side-0 shuffle, then b's map stage (planned first)");
}

#[test]
fn unions_coalesces_and_products_stay_in_one_stage() {
    let graph = plan(vec![
        node(1, vec![], inline(3)),
        node(2, vec![], inline(4)),
        node(3, vec![0, 1], NodeKind::Union),
        node(4, vec![2], NodeKind::Coalesce { partitions: 2, concat: call("coalesce") }),
        node(5, vec![3, 0], NodeKind::Cartesian { product: call("cartesian") }),
    ]);
    assert_eq!(graph.stages.len(), 1);
    assert_eq!(graph.stages[0].partitions, 6, "2 coalesced × 3");
}

#[test]
fn too_many_partitions_or_shuffle_pieces_are_refused_before_anything_runs() {
    let e = refusal(vec![
        node(1, vec![], inline(MAX_PARTITIONS as usize)),
        node(2, vec![0], shuffle(1, Some(MAX_PARTITIONS), "reduce_by_key_into at job.rs:3:4")),
    ]);
    assert!(e.contains("reduce_by_key_into at job.rs:3:4"), "{e}");
    let e = refusal(vec![
        node(1, vec![], inline(300)),
        node(2, vec![], inline(300)),
        node(3, vec![0, 1], NodeKind::Cartesian { product: call("cartesian") }),
    ]);
    assert!(e.contains("90000 partitions"), "{e}");
}
