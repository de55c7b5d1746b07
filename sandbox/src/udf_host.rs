//! The host side of UDF calls: each UDF module a task calls gets a sandbox of its own, made on
//! the task's first call and kept until the task ends.
//!
//! Design choice: a UDF's sandbox is a separate wasmtime `Store`, not a second instance in the
//! task's store, so that a module written by another tenant cannot reach the task's inputs,
//! output or broadcast values through the host functions (its role is [`Role::Udf`], for which
//! they refuse), and sees only the records it is given. It runs under the task's rules and is
//! counted against them: the same deadline (what is left of it at each call) and one memory
//! budget shared with the task's own sandbox ([`MemoryBudget`]). Its stdout and stderr go to the
//! task's.
//!
//! A call copies the batch from the task's memory into the UDF's (`weft_alloc`, then a write),
//! runs `weft_udf_call`, and copies the answer out to be read by the task's `udf_read`: two
//! copies per batch and no per-record crossing.

use crate::capture::CapturedOutput;
use crate::engine::{SandboxPolicy, ticks};
use crate::error::{ModuleError, TaskError};
use crate::module::JobModule;
use crate::store::{MemoryBudget, Role, SandboxState, classify, new_store};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wasmtime::{Memory, Store, TypedFunc};
use weft_abi::guest::EXPORT_ALLOC;
use weft_abi::udf::{EXPORT_UDF_CALL, EXPORT_UDF_SIGNATURES, UdfSignature, unpack};

/// A UDF module bound to a slot of a job, compiled and ready for a task to call.
#[derive(Clone)]
pub struct BoundUdf {
    /// Its slot in the job (what the task's calls name).
    pub slot: u32,
    /// Its resolved name, for messages.
    pub name: String,
    /// The compiled module.
    pub module: JobModule,
}

/// One UDF module's live sandbox.
struct UdfSandbox {
    store: Store<SandboxState>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    call: TypedFunc<(u32, u32, u32, u32), i64>,
}

/// The UDF modules one task may call and the sandboxes of those it called.
pub(crate) struct UdfSandboxes {
    bound: Vec<BoundUdf>,
    live: HashMap<u32, UdfSandbox>,
    /// The last call's answer, until the task reads it.
    pub(crate) answer: Vec<u8>,
    memory: MemoryBudget,
    memory_limit: u64,
    deadline: Instant,
    limit: Duration,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

impl UdfSandboxes {
    /// The UDFs of a task that must end by `deadline` (`limit` after it started) and shares
    /// `memory`, up to `memory_limit` bytes, with them.
    pub(crate) fn new(
        bound: Vec<BoundUdf>,
        memory: MemoryBudget,
        policy: &SandboxPolicy,
        stdout: &CapturedOutput,
        stderr: &CapturedOutput,
    ) -> UdfSandboxes {
        UdfSandboxes {
            bound,
            live: HashMap::new(),
            answer: Vec::new(),
            memory,
            memory_limit: policy.memory_limit,
            deadline: Instant::now() + policy.task_timeout,
            limit: policy.task_timeout,
            stdout: stdout.clone(),
            stderr: stderr.clone(),
        }
    }

    /// Run function `function` of the module in `slot` over `batch`, in batch format `format`
    /// (which the module checks), for the operator `caller`; returns the answer's length (the
    /// answer is in [`answer`](Self::answer)).
    pub(crate) fn call(
        &mut self,
        slot: u32,
        function: u32,
        format: u32,
        batch: &[u8],
        caller: Option<String>,
    ) -> Result<usize, TaskError> {
        let label = match caller {
            Some(op) => format!("{op}, inside the UDF"),
            None => format!("a UDF call (slot {slot})"),
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TaskError::DeadlineExceeded { limit: self.limit, operator: Some(label) });
        }
        if !self.live.contains_key(&slot) {
            let sandbox = self.start(slot, &label, left)?;
            self.live.insert(slot, sandbox);
        }
        let limit = self.limit;
        let sandbox = self.live.get_mut(&slot).expect("started above");
        let store = &mut sandbox.store;
        store.data_mut().role = Role::Udf { label: label.clone() };
        store.set_epoch_deadline(ticks(left));
        let memory = sandbox.memory;
        let len = u32::try_from(batch.len())
            .map_err(|_| TaskError::Failed(format!("{label}: a UDF batch over 4 GiB")))?;
        let ran = (|| {
            let ptr = sandbox.alloc.call(&mut *store, len)?;
            memory.write(&mut *store, ptr as usize, batch)?;
            sandbox.call.call(&mut *store, (function, format, ptr, len))
        })();
        let packed = ran.map_err(|e| classify(e, store, Some(memory), limit))?;
        let Some((ptr, len)) = unpack(packed) else {
            let why = store.data_mut().fail_message.take();
            let why = why.unwrap_or_else(|| "the UDF failed without saying why".into());
            return Err(TaskError::Failed(format!("{label}: {why}")));
        };
        let data = memory.data(&*store);
        let answer = (ptr as usize)
            .checked_add(len as usize)
            .and_then(|end| data.get(ptr as usize..end))
            .ok_or_else(|| {
                TaskError::Failed(format!("{label}: the UDF answered with a buffer out of bounds"))
            })?;
        self.answer.clear();
        self.answer.extend_from_slice(answer);
        Ok(self.answer.len())
    }

    /// Make the sandbox of the module in `slot`.
    fn start(&self, slot: u32, label: &str, left: Duration) -> Result<UdfSandbox, TaskError> {
        let bound = self.bound.iter().find(|b| b.slot == slot).ok_or_else(|| {
            TaskError::Failed(format!("{label}: the job bound no UDF module in slot {slot}"))
        })?;
        let policy = SandboxPolicy {
            memory_limit: self.memory_limit,
            task_timeout: self.limit,
            ..bound.module.policy().clone()
        };
        let role = Role::Udf { label: label.to_string() };
        let args = ["weft-udf".to_string()];
        let mut store = new_store(
            &bound.module.engine,
            &policy,
            role,
            &args,
            &self.stdout,
            &self.stderr,
            left,
            self.memory.clone(),
        );
        let limit = self.limit;
        let instance = bound
            .module
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(e, &mut store, None, limit))?;
        let exports = (|| {
            let memory = instance
                .get_memory(&mut store, "memory")
                .ok_or_else(|| wasmtime::format_err!("the module exports no memory"))?;
            let alloc = instance.get_typed_func::<u32, u32>(&mut store, EXPORT_ALLOC)?;
            let call = instance
                .get_typed_func::<(u32, u32, u32, u32), i64>(&mut store, EXPORT_UDF_CALL)?;
            Ok::<_, wasmtime::Error>((memory, alloc, call))
        })();
        let (memory, alloc, call) = exports.map_err(|e| {
            TaskError::Failed(format!("{label}: {} is not a UDF module: {e:#}", bound.name))
        })?;
        Ok(UdfSandbox { store, memory, alloc, call })
    }
}

/// How long reading a module's signatures may take, and the memory it may use.
const SIGNATURES_TIMEOUT: Duration = Duration::from_secs(5);
const SIGNATURES_MEMORY: u64 = 256 << 20;

/// The UDFs `module` declares (its `weft_udf_signatures`, run in a sandbox of its own); an empty
/// list for a module without UDFs.
pub fn udf_signatures(module: &JobModule) -> Result<Vec<UdfSignature>, ModuleError> {
    if !module.has_export(EXPORT_UDF_SIGNATURES) {
        return Ok(Vec::new());
    }
    let policy = SandboxPolicy {
        memory_limit: SIGNATURES_MEMORY,
        task_timeout: SIGNATURES_TIMEOUT,
        ..module.policy().clone()
    };
    let quiet = CapturedOutput::buffer(0);
    let role = Role::Udf { label: "weft_udf_signatures".into() };
    let mut store = new_store(
        &module.engine,
        &policy,
        role,
        &["weft-udf".to_string()],
        &quiet,
        &quiet,
        SIGNATURES_TIMEOUT,
        MemoryBudget::default(),
    );
    let failed = |e: String| ModuleError::NotAJob(format!("cannot read the UDF signatures: {e}"));
    let instance = module.pre.instantiate(&mut store).map_err(|e| failed(format!("{e:#}")))?;
    let memory = instance.get_memory(&mut store, "memory");
    let read = (|| {
        let f = instance.get_typed_func::<(), i64>(&mut store, EXPORT_UDF_SIGNATURES)?;
        f.call(&mut store, ())
    })();
    let packed =
        read.map_err(|e| failed(classify(e, &mut store, memory, SIGNATURES_TIMEOUT).to_string()))?;
    let Some((ptr, len)) = unpack(packed) else {
        let why = store.data_mut().fail_message.take().unwrap_or_default();
        return Err(failed(why));
    };
    let memory = memory.ok_or_else(|| failed("the module exports no memory".into()))?;
    let data = memory.data(&store);
    let bytes = (ptr as usize)
        .checked_add(len as usize)
        .and_then(|end| data.get(ptr as usize..end))
        .ok_or_else(|| failed("the answer is out of bounds".into()))?;
    rmp_serde::from_slice(bytes).map_err(|e| failed(format!("they do not decode: {e}")))
}
