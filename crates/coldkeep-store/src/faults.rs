//! Faults injected at every write, so that tests prove what a failure at any instant leaves
//! behind instead of hoping a SIGKILL lands somewhere interesting.
//!
//! A [`FaultPlan`] counts *write points* — every call that changes storage: a backend's
//! `create`, `write`, `finish` and `delete`, and (through `coldkeep_catalog::FaultyKv`) every
//! catalog batch — in the order they happen, across all the decorators that share the plan.
//! Run an operation once with [`FaultPlan::count`] to learn how many points it passes, then
//! once per point `N` with [`FaultPlan::at`]: the `N`th call fails as its [`FaultMode`] says.
//! [`FaultyBackend`] is the backend decorator.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::backend::{
    Access, Backend, ObjectInfo, ObjectKind, ObjectLock, ObjectName, ObjectReader, ObjectWriter,
};
use crate::StoreError;

/// What happens at the chosen write point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The call fails without effect; later calls work (a full disk for a moment, a refused
    /// request).
    Fail,
    /// The process dies just before the call: it has no effect, and it and every later write
    /// fail, as if nothing after that instant reached storage.
    CrashBefore,
    /// The process dies just after the call took effect, before it could report success: the
    /// call's effect is durable, but it and every later write fail.
    CrashAfter,
}

/// Which write point fails, shared by every decorator of one repository.
#[derive(Debug)]
pub struct FaultPlan {
    target: Target,
    mode: FaultMode,
    passed: AtomicU64,
    /// The point that failed (1-based), or 0 while none has.
    failed_at: AtomicU64,
    crashed: AtomicBool,
    /// What each point was, in order (`"kv write"`, `"create packs/…"`, …).
    points: Mutex<Vec<String>>,
}

/// Which point of a [`FaultPlan`] fails.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The `n`th (1-based; 0 for none).
    Nth(u64),
    /// The first whose description starts with this (`"finish packs/"`): for a point that
    /// another thread's writes may come before.
    FirstMatching(&'static str),
}

/// What a write point decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Do the call.
    Proceed,
    /// Fail without doing it.
    Refuse,
    /// Do the call, then fail.
    ApplyThenFail,
}

impl FaultPlan {
    /// A plan that fails nothing and counts the points.
    pub fn count() -> Arc<Self> {
        Self::at(0, FaultMode::Fail)
    }

    /// A plan that fails point `n` (1-based) as `mode` says.
    pub fn at(n: u64, mode: FaultMode) -> Arc<Self> {
        Self::new(Target::Nth(n), mode)
    }

    /// A plan that fails, as `mode` says, the first point whose description (as
    /// [`points`](Self::points) lists them) starts with `prefix`.
    pub fn at_first(prefix: &'static str, mode: FaultMode) -> Arc<Self> {
        Self::new(Target::FirstMatching(prefix), mode)
    }

    fn new(target: Target, mode: FaultMode) -> Arc<Self> {
        Arc::new(Self {
            target,
            mode,
            passed: AtomicU64::new(0),
            failed_at: AtomicU64::new(0),
            crashed: AtomicBool::new(false),
            points: Mutex::new(Vec::new()),
        })
    }

    /// How many write points have been passed so far.
    pub fn passed(&self) -> u64 {
        self.passed.load(Ordering::SeqCst)
    }

    /// Whether the chosen point has been reached.
    pub fn tripped(&self) -> bool {
        self.failed_at.load(Ordering::SeqCst) != 0
    }

    /// What each point passed so far was.
    pub fn points(&self) -> Vec<String> {
        self.points.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Called by a decorator before a write: what to do with it.
    pub fn point(&self, what: impl FnOnce() -> String) -> Verdict {
        if self.crashed.load(Ordering::SeqCst) {
            return Verdict::Refuse; // a dead process writes nothing
        }
        let mut points = self.points.lock().unwrap_or_else(PoisonError::into_inner);
        let n = self.passed.fetch_add(1, Ordering::SeqCst) + 1;
        let described = what();
        let fails = match self.target {
            Target::Nth(at) => n == at,
            Target::FirstMatching(prefix) => !self.tripped() && described.starts_with(prefix),
        };
        points.push(described);
        if !fails {
            return Verdict::Proceed;
        }
        self.failed_at.store(n, Ordering::SeqCst);
        match self.mode {
            FaultMode::Fail => Verdict::Refuse,
            FaultMode::CrashBefore => {
                self.crashed.store(true, Ordering::SeqCst);
                Verdict::Refuse
            }
            FaultMode::CrashAfter => {
                self.crashed.store(true, Ordering::SeqCst);
                Verdict::ApplyThenFail
            }
        }
    }

    /// The error an injected fault returns.
    pub fn error(&self) -> std::io::Error {
        std::io::Error::other(format!(
            "injected fault at write point {} ({:?})",
            self.failed_at.load(Ordering::SeqCst),
            self.mode
        ))
    }

    /// Runs `call` as the plan decides for the point described by `what`; `fail` turns the
    /// injected I/O error into the caller's error type.
    pub fn guard<T, E>(
        &self,
        what: impl FnOnce() -> String,
        fail: impl FnOnce(std::io::Error) -> E,
        call: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        match self.point(what) {
            Verdict::Proceed => call(),
            Verdict::Refuse => Err(fail(self.error())),
            Verdict::ApplyThenFail => {
                call()?;
                Err(fail(self.error()))
            }
        }
    }
}

/// A [`Backend`] decorator that fails writes as its [`FaultPlan`] says. Reads pass through.
#[derive(Debug)]
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    plan: Arc<FaultPlan>,
}

impl FaultyBackend {
    pub fn new(inner: Arc<dyn Backend>, plan: Arc<FaultPlan>) -> Self {
        Self { inner, plan }
    }
}

fn injected<'n>(
    op: &'static str,
    name: &'n ObjectName,
) -> impl FnOnce(std::io::Error) -> StoreError + 'n {
    move |e| StoreError::backend(op, name, e)
}

impl Backend for FaultyBackend {
    fn create(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let inner = self.plan.guard(
            || format!("create {name}"),
            injected("create", name),
            || self.inner.create(name),
        )?;
        Ok(Box::new(FaultyWriter { inner, name: name.clone(), plan: Arc::clone(&self.plan) }))
    }

    fn open(&self, name: &ObjectName, access: Access) -> Result<Box<dyn ObjectReader>, StoreError> {
        self.inner.open(name, access)
    }

    fn stat(&self, name: &ObjectName) -> Result<ObjectInfo, StoreError> {
        self.inner.stat(name)
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>, StoreError> {
        self.inner.list(kind)
    }

    fn delete(&self, name: &ObjectName) -> Result<(), StoreError> {
        self.plan.guard(
            || format!("delete {name}"),
            injected("delete", name),
            || self.inner.delete(name),
        )
    }

    fn remove_unfinished(&self) -> Result<usize, StoreError> {
        let what = || "remove unfinished".to_owned();
        let fail = |e| StoreError::backend("remove unfinished objects", "", e);
        self.plan.guard(what, fail, || self.inner.remove_unfinished())
    }

    fn object_lock(&self) -> Result<Option<&dyn ObjectLock>, StoreError> {
        self.inner.object_lock()
    }
}

#[derive(Debug)]
struct FaultyWriter {
    inner: Box<dyn ObjectWriter>,
    name: ObjectName,
    plan: Arc<FaultPlan>,
}

impl ObjectWriter for FaultyWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let (plan, name, inner) = (&self.plan, &self.name, &mut self.inner);
        plan.guard(|| format!("write {name}"), injected("write", name), || inner.write(bytes))
    }

    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        let Self { inner, name, plan } = *self;
        plan.guard(|| format!("finish {name}"), injected("finish", &name), || inner.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use crate::PackId;

    fn faulty(plan: &Arc<FaultPlan>) -> (MemoryBackend, FaultyBackend) {
        let mem = MemoryBackend::new();
        (mem.clone(), FaultyBackend::new(Arc::new(mem), Arc::clone(plan)))
    }

    #[test]
    fn passes_the_conformance_suite_when_no_fault_is_planned() {
        crate::backend::conformance::run_all(&|| {
            let b = FaultyBackend::new(Arc::new(MemoryBackend::new()), FaultPlan::count());
            (Box::new(b) as Box<dyn Backend>, Box::new(()) as Box<dyn std::any::Any>)
        });
    }

    #[test]
    fn each_mode_fails_its_point_as_it_says() {
        let name = |i: u8| ObjectName::pack(PackId::from_bytes([i; 16]));
        // Points: create 1, write 2, finish 3, then the same for the second object.
        let plan = FaultPlan::count();
        let (_, b) = faulty(&plan);
        b.put(&name(1), b"a").expect("put");
        b.put(&name(2), b"b").expect("put");
        assert_eq!(plan.passed(), 6);
        assert!(plan.points()[2].starts_with("finish packs/"));

        let plan = FaultPlan::at(3, FaultMode::Fail);
        let (mem, b) = faulty(&plan);
        assert!(b.put(&name(1), b"a").is_err());
        b.put(&name(2), b"b").expect("later calls work");
        assert_eq!(mem.list(ObjectKind::Pack).expect("list").len(), 1);

        let plan = FaultPlan::at(3, FaultMode::CrashBefore);
        let (mem, b) = faulty(&plan);
        assert!(b.put(&name(1), b"a").is_err());
        assert!(b.put(&name(2), b"b").is_err(), "a crashed process writes nothing more");
        assert!(mem.list(ObjectKind::Pack).expect("list").is_empty());

        let plan = FaultPlan::at(3, FaultMode::CrashAfter);
        let (mem, b) = faulty(&plan);
        assert!(b.put(&name(1), b"a").is_err(), "the caller never hears of the success");
        assert!(b.put(&name(2), b"b").is_err());
        assert_eq!(mem.get(&name(1)).expect("the finished object is durable"), b"a");
        assert!(plan.tripped());
    }

    #[test]
    fn a_plan_by_description_fails_only_the_first_matching_point() {
        let name = |i: u8| ObjectName::pack(PackId::from_bytes([i; 16]));
        let plan = FaultPlan::at_first("finish packs/", FaultMode::Fail);
        let (mem, b) = faulty(&plan);
        b.create(&name(1)).expect("create").write(b"a").expect("write");
        assert!(!plan.tripped(), "a create and a write do not match");
        assert!(b.put(&name(2), b"b").is_err(), "the first finish fails");
        assert!(plan.tripped());
        assert!(plan.error().to_string().contains("write point 5"), "{}", plan.error());
        b.put(&name(3), b"c").expect("the second finish works");
        assert_eq!(mem.list(ObjectKind::Pack).expect("list").len(), 1);
    }
}
