//! [`Broadcast`] variables: a read-only value sent to every node once, not with every task.
//!
//! Design choice: the value is encoded once, in the driver, and travels to the host with the
//! next action, beside the plan rather than inside it; a task's description names it by id
//! only. A node fetches it from the coordinator the first time one of its tasks needs it and
//! keeps it for the job's later tasks; each task decodes it once, the first time its closure
//! asks for [`Broadcast::value`]. The cost: one decode per task that reads it (every task is a
//! fresh sandbox), against a copy per task in the plan.

use crate::plan::BroadcastValue;
use crate::{Error, Record};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;

thread_local! {
    /// The next broadcast id of this driver.
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    /// Broadcasts created since the last action, to send with the next.
    static PENDING: RefCell<Vec<BroadcastValue>> = const { RefCell::new(Vec::new()) };
}

/// The broadcasts created since the last action, taken (for the next action's request).
pub(crate) fn take_pending() -> Vec<BroadcastValue> {
    PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// A read-only value every task can read, sent to each node once. Create one with
/// [`Context::broadcast`](crate::Context::broadcast), pass it to closures with the `*_with`
/// operators and read it with [`value`](Self::value):
///
/// ```no_run
/// # use weft::prelude::*;
/// # use std::collections::HashMap;
/// # fn f(ctx: &Context, flights: Dataset<(String, u64)>, names: HashMap<String, String>) {
/// let names = ctx.broadcast(names);
/// let named = flights.map_with(names, |names, (carrier, n): (String, u64)| {
///     (names.value().get(&carrier).cloned().unwrap_or(carrier), n)
/// });
/// # }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Broadcast<T> {
    id: u64,
    #[serde(skip)]
    value: OnceCell<Rc<T>>,
}

impl<T> Clone for Broadcast<T> {
    fn clone(&self) -> Self {
        let value = OnceCell::new();
        if let Some(v) = self.value.get() {
            let _ = value.set(v.clone());
        }
        Broadcast { id: self.id, value }
    }
}

impl<T> std::fmt::Debug for Broadcast<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Broadcast(#{})", self.id)
    }
}

impl<T: Record> Broadcast<T> {
    pub(crate) fn new(value: T) -> Result<Broadcast<T>, Error> {
        let bytes = rmp_serde::to_vec(&value)?;
        let limit = weft_abi::limits::MAX_BROADCAST_BYTES;
        if bytes.len() > limit {
            return Err(Error::Unsupported(format!(
                "a broadcast of {} MiB is larger than the {} MiB limit",
                bytes.len() >> 20,
                limit >> 20
            )));
        }
        let id = NEXT_ID.with(|next| next.replace(next.get() + 1));
        PENDING.with(|p| p.borrow_mut().push(BroadcastValue { id, bytes }));
        Ok(Broadcast { id, value: OnceCell::from(Rc::new(value)) })
    }

    /// The value. In a task, the first call fetches it from the host and decodes it; a value
    /// that cannot be had fails the task with the reason.
    pub fn value(&self) -> &T {
        self.value.get_or_init(|| match self.fetch() {
            Ok(value) => Rc::new(value),
            Err(e) => panic!("weft: broadcast {} cannot be read: {e}", self.id),
        })
    }

    fn fetch(&self) -> Result<T, Error> {
        let bytes = crate::host::broadcast(self.id)
            .ok_or_else(|| Error::Job("the host does not have it".into()))?;
        Ok(rmp_serde::from_slice(&bytes)?)
    }
}
