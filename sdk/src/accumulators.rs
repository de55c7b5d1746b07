//! [`Accumulator`]s: counters and sums that tasks add to and the driver reads, with Spark's
//! guarantee for updates made in actions — each task's updates count exactly once.
//!
//! Design choice: a task's updates stay in its instance until the task has succeeded; they then
//! travel to the coordinator with the task's outcome, which keeps them per partition of each
//! stage and sums them when the action succeeds. An attempt that failed, a second copy of a
//! task, or a partition computed again (after a lost node) replaces, never adds to, what that
//! partition reported: so the total counts every partition once. A dataset that two actions
//! compute (and does not cache) is computed, and counted, twice, as in Spark.

use crate::abi::{AccumulatorUpdate, AccumulatorValue};
use crate::{Error, Record};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;

/// A number an accumulator can hold: `u64`, `i64` or `f64` (Spark's long and double
/// accumulators, and an unsigned one). Integer sums wrap on overflow, as Spark's do.
pub trait AccumulatorNumber: Record + Copy + Default {
    /// The value as it travels.
    fn wrap(self) -> AccumulatorValue;
    /// The value back, if it is of this type.
    fn unwrap(value: &AccumulatorValue) -> Option<Self>;
}

impl AccumulatorNumber for u64 {
    fn wrap(self) -> AccumulatorValue {
        AccumulatorValue::U64(self)
    }
    fn unwrap(value: &AccumulatorValue) -> Option<Self> {
        match value {
            AccumulatorValue::U64(v) => Some(*v),
            _ => None,
        }
    }
}

impl AccumulatorNumber for i64 {
    fn wrap(self) -> AccumulatorValue {
        AccumulatorValue::I64(self)
    }
    fn unwrap(value: &AccumulatorValue) -> Option<Self> {
        match value {
            AccumulatorValue::I64(v) => Some(*v),
            _ => None,
        }
    }
}

impl AccumulatorNumber for f64 {
    fn wrap(self) -> AccumulatorValue {
        AccumulatorValue::F64(self)
    }
    fn unwrap(value: &AccumulatorValue) -> Option<Self> {
        match value {
            AccumulatorValue::F64(v) => Some(*v),
            _ => None,
        }
    }
}

/// A shared sum: tasks [`add`](Self::add) to it, the driver reads its [`value`](Self::value)
/// after actions. Create one with [`Context::accumulator`](crate::Context::accumulator) and pass
/// it to closures with the `*_with` operators, e.g.
/// `lines.map_with(bad.clone(), |bad, l| { if l.is_empty() { bad.add(1) } l })`.
///
/// Only updates made in successful actions count: an action that fails adds nothing.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Accumulator<T> {
    id: u64,
    name: String,
    #[serde(skip)]
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for Accumulator<T> {
    fn clone(&self) -> Self {
        Accumulator { id: self.id, name: self.name.clone(), _value: PhantomData }
    }
}

impl<T> std::fmt::Debug for Accumulator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Accumulator({} #{})", self.name, self.id)
    }
}

thread_local! {
    /// The next accumulator id of this driver.
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    /// The driver's totals, from successful actions (and its own `add`s).
    static TOTALS: RefCell<HashMap<u64, AccumulatorValue>> = RefCell::new(HashMap::new());
    /// The running task's updates, sent with its outcome when it succeeds.
    static TASK_UPDATES: RefCell<HashMap<u64, AccumulatorValue>> = RefCell::new(HashMap::new());
}

impl<T: AccumulatorNumber> Accumulator<T> {
    pub(crate) fn new(name: &str) -> Accumulator<T> {
        let id = NEXT_ID.with(|next| next.replace(next.get() + 1));
        TOTALS.with(|t| t.borrow_mut().insert(id, T::default().wrap()));
        Accumulator { id, name: name.to_string(), _value: PhantomData }
    }

    /// Add `v`: inside a task, to the task's updates; in the driver, to the total at once.
    pub fn add(&self, v: T) {
        let updates = if crate::exec::in_task() { &TASK_UPDATES } else { &TOTALS };
        updates.with(|u| {
            u.borrow_mut().entry(self.id).and_modify(|a| a.add(&v.wrap())).or_insert(v.wrap());
        });
    }

    /// The total of every update of the actions that succeeded so far (read in the driver;
    /// inside a task it is 0).
    pub fn value(&self) -> T {
        TOTALS.with(|t| t.borrow().get(&self.id).and_then(T::unwrap).unwrap_or_default())
    }

    /// The name it was created with.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Start a task with no updates.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn task_started() {
    TASK_UPDATES.with(|u| u.borrow_mut().clear());
}

/// The running task's updates, taken.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn take_task_updates() -> Vec<AccumulatorUpdate> {
    TASK_UPDATES.with(|u| {
        u.borrow_mut().drain().map(|(id, value)| AccumulatorUpdate { id, value }).collect()
    })
}

/// Add an action's totals to the driver's.
pub(crate) fn apply(updates: &[AccumulatorUpdate]) -> Result<(), Error> {
    TOTALS.with(|t| {
        let mut totals = t.borrow_mut();
        for u in updates {
            match totals.get_mut(&u.id) {
                Some(total) => total.add(&u.value),
                None => {
                    return Err(Error::Codec(format!("an update of unknown accumulator {}", u.id)));
                }
            }
        }
        Ok(())
    })
}
