//! [`AgentCacheSession`]: one agent's session, its scoped caches and its loop detection.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::{Pin, pin};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};

use crate::detector::{Detection, LoopDetector, LoopLimits};
use crate::metrics::{Counters, Event, GLOBAL};
use crate::resource::ResourceRegistry;
use crate::spin::{SpinGuard, SpinLock};
use crate::{AgentMetrics, LoopKind};

/// What a session does when it detects a loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnLoop {
    /// Halt the workflow: the looping tool does not run, nothing after it in the session
    /// runs, and [`run`](AgentCacheSession::run) returns `Err(AgentLoopDetected)`.
    #[default]
    Raise,
    /// Log a `tracing` warning and let the call run.
    Warn,
    /// Skip the tool body and return its cached value. A call with no cached value to return
    /// (every invalidator call, and a read whose entry is gone) halts as `Raise` does, since
    /// running the looping tool again is what detection exists to prevent.
    ShortCircuit,
}

/// A runaway loop that halted a session's workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentLoopDetected {
    kind: LoopKind,
    tool: &'static str,
    session_id: String,
    cycle: Vec<&'static str>,
    message: String,
}

impl AgentLoopDetected {
    /// What kind of loop.
    pub fn kind(&self) -> LoopKind {
        self.kind
    }

    /// The bare name of the tool whose call completed the loop (it did not run).
    pub fn tool(&self) -> &str {
        self.tool
    }

    /// The session it happened in.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The calls of a cycle, in order; empty for other kinds.
    pub fn cycle(&self) -> &[&'static str] {
        &self.cycle
    }

    /// The account of the loop, such as `Cycle detected: check_stock -> update_stock`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for AgentLoopDetected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (session {})", self.message, self.session_id)
    }
}

impl std::error::Error for AgentLoopDetected {}

/// One agent's session: session-scoped tool caches that live for one [`run`](Self::run), loop
/// detection over every tool call made inside it, and metrics.
///
/// ```
/// use agent_cache::{AgentCacheSession, OnLoop, agent_cache};
///
/// #[agent_cache(resource = "ticket", scope = "session")]
/// async fn get_ticket(id: u64) -> String {
///     format!("ticket {id}") // GET /tickets/{id}
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let session = AgentCacheSession::builder()
///     .session_id("agent-A")
///     .max_tool_repeats(5)
///     .on_loop(OnLoop::Raise)
///     .build();
/// let tickets = session
///     .run(async {
///         get_ticket(100).await; // fetched
///         get_ticket(100).await  // a hit, from this session's cache
///     })
///     .await
///     .unwrap();
/// assert_eq!(tickets, "ticket 100");
/// let m = session.metrics();
/// assert_eq!((m.hits, m.misses), (1, 1));
/// # }
/// ```
#[derive(Clone)]
pub struct AgentCacheSession {
    inner: Arc<SessionInner>,
}

pub(crate) struct SessionInner {
    id: String,
    detection: bool,
    limits: LoopLimits,
    on_loop: OnLoop,
    pub(crate) counters: Counters,
    /// The hits of its live runs that detect loops, each counted under its run's detector
    /// lock (see `ActiveRun::check_read`); a [`RunDetector`] adds its count to `counters`
    /// when it goes.
    live_hits: Mutex<Vec<Arc<AtomicU64>>>,
}

impl SessionInner {
    /// Its counters with the hits of its live runs.
    fn metrics(&self) -> AgentMetrics {
        let live = self.live_hits.lock();
        self.counters
            .snapshot_with_hits(live.iter().map(|hits| hits.load(Ordering::Relaxed)).sum())
    }

    /// Adds its counts, those of its live runs included, to `total`.
    fn add_to(&self, total: &Counters) {
        let live = self.live_hits.lock();
        self.counters.add_to(total);
        total.add_hits(live.iter().map(|hits| hits.load(Ordering::Relaxed)).sum());
    }
}

/// Configures an [`AgentCacheSession`]. Cloning it gives a template for sessions alike (the
/// MCP guard builds one per client from it).
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct AgentCacheSessionBuilder {
    id: Option<String>,
    detection: bool,
    limits: LoopLimits,
    on_loop: OnLoop,
}

impl AgentCacheSessionBuilder {
    /// The session's id, in metrics, logs and errors. Default: a fresh unique id.
    pub fn session_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Whether to detect loops. Default: `true`.
    pub fn loop_detection(mut self, on: bool) -> Self {
        self.detection = on;
        self
    }

    /// At most this many calls of one tool with the same arguments. Default: 5.
    pub fn max_tool_repeats(mut self, repeats: u32) -> Self {
        self.limits.max_tool_repeats = repeats;
        self
    }

    /// At most this many tool calls in one run. Default: 50.
    pub fn max_execution_depth(mut self, calls: u64) -> Self {
        self.limits.max_execution_depth = calls;
        self
    }

    /// A call that failed this many times in a row may not run again. Default: 3.
    pub fn max_retries(mut self, failures: u32) -> Self {
        self.limits.max_retries = failures;
        self
    }

    /// The longest cycle of calls looked for (2 to 32). Default: 10.
    pub fn max_cycle_len(mut self, calls: usize) -> Self {
        self.limits.max_cycle_len = calls.clamp(2, 32);
        self
    }

    /// What to do on a loop. Default: [`OnLoop::Raise`].
    pub fn on_loop(mut self, on_loop: OnLoop) -> Self {
        self.on_loop = on_loop;
        self
    }

    /// The id given to the template, if any.
    #[cfg(feature = "rmcp")]
    pub(crate) fn given_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Builds the session.
    pub fn build(self) -> AgentCacheSession {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let session = AgentCacheSession {
            inner: Arc::new(SessionInner {
                id: self.id.unwrap_or_else(|| {
                    format!("session-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
                }),
                detection: self.detection,
                limits: self.limits,
                on_loop: self.on_loop,
                counters: Counters::default(),
                live_hits: Mutex::new(Vec::new()),
            }),
        };
        let mut live = LIVE.lock();
        live.retain(|session| session.strong_count() > 0);
        live.push(Arc::downgrade(&session.inner));
        session
    }
}

impl Default for AgentCacheSession {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl fmt::Debug for AgentCacheSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCacheSession")
            .field("id", &self.inner.id)
            .field("loop_detection", &self.inner.detection)
            .field("limits", &self.inner.limits)
            .field("on_loop", &self.inner.on_loop)
            .finish_non_exhaustive()
    }
}

impl AgentCacheSession {
    /// A session with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts configuring a session.
    pub fn builder() -> AgentCacheSessionBuilder {
        AgentCacheSessionBuilder {
            id: None,
            detection: true,
            limits: LoopLimits::default(),
            on_loop: OnLoop::Raise,
        }
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// A snapshot of this session's counters, readable during and after a run.
    pub fn metrics(&self) -> AgentMetrics {
        self.inner.metrics()
    }

    /// Runs an agent workflow in this session.
    ///
    /// Every tool called by `workflow`, or by anything it awaits, sees the session; work
    /// spawned onto other tasks joins it through [`spawn`](crate::spawn). Session-scoped
    /// entries live until `run` returns. Each run starts a fresh loop detector.
    ///
    /// # Errors
    ///
    /// [`AgentLoopDetected`] when a loop halted the workflow (with [`OnLoop::Raise`], or
    /// [`OnLoop::ShortCircuit`] with nothing cached): the looping tool did not run and
    /// `workflow` was dropped at that call, along with the tasks it spawned.
    pub async fn run<F: Future>(&self, workflow: F) -> Result<F::Output, AgentLoopDetected> {
        let active = Arc::new(ActiveRun::new(Arc::clone(&self.inner)));
        let outcome = InRun::new(Arc::clone(&active), async {
            tokio::select! {
                biased;
                error = active.halted() => Err(error),
                output = workflow => Ok(output),
            }
        })
        .await;
        active.finish();
        outcome
    }
}

thread_local! {
    /// The run whose future this thread is polling (or dropping), or null: set by [`InRun`]
    /// around each poll. Const-initialised and without a destructor, so reading it is one
    /// load (a tokio task-local is a `RefCell` behind a lazily registered destructor).
    static POLLED: Cell<*const ActiveRun> = const { Cell::new(ptr::null()) };
}

/// A future that runs in a session's run: while it is polled or dropped, the tool calls it
/// makes on its thread see the run (what `tokio::task_local!`'s `scope` does, for one
/// pointer read on every tool call).
pub(crate) struct InRun<F> {
    run: Arc<ActiveRun>,
    /// Pinned with `self`: never moved out, only dropped in place, in `drop`.
    future: ManuallyDrop<F>,
}

impl<F> InRun<F> {
    pub(crate) fn new(run: Arc<ActiveRun>, future: F) -> Self {
        InRun {
            run,
            future: ManuallyDrop::new(future),
        }
    }
}

impl<F: Future> Future for InRun<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self`.
        let this = unsafe { self.get_unchecked_mut() };
        let _entered = Entered::new(&this.run);
        // SAFETY: as above.
        unsafe { Pin::new_unchecked(&mut *this.future) }.poll(cx)
    }
}

impl<F> Drop for InRun<F> {
    fn drop(&mut self) {
        // Dropped in the run, as tokio's task-locals drop their futures: a destructor that
        // calls a tool sees the session it ran in.
        let _entered = Entered::new(&self.run);
        // SAFETY: dropped once, in place, and never touched again.
        unsafe { ManuallyDrop::drop(&mut self.future) }
    }
}

/// Sets [`POLLED`] to a run for as long as it lives, then back to what it was (a nested
/// run's poll restores the outer one's; a panic restores it too).
struct Entered {
    previous: *const ActiveRun,
}

impl Entered {
    #[inline]
    fn new(run: &Arc<ActiveRun>) -> Self {
        Entered {
            previous: POLLED.replace(Arc::as_ptr(run)),
        }
    }
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        POLLED.set(self.previous);
    }
}

/// The run of the session the calling task is in, if any.
pub(crate) fn current() -> Option<Arc<ActiveRun>> {
    with_current(|run| {
        run.map(|run| {
            // SAFETY: `run` points into an `Arc` that the `InRun` being polled holds.
            unsafe {
                Arc::increment_strong_count(run);
                Arc::from_raw(run)
            }
        })
    })
}

/// Calls `f` with the run of the session the calling task is in, if any, borrowed in place:
/// the hit path takes no reference count.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&ActiveRun>) -> R) -> R {
    let run = POLLED.with(Cell::get);
    // SAFETY: a run is set only while an `InRun` that holds an `Arc` of it is being polled or
    // dropped on this thread, and `f` is synchronous: nothing can drop the run while `f`
    // holds the reference (a run entered inside `f` is left before `f` goes on).
    f(unsafe { run.as_ref() })
}

/// Spawns `future` onto the current tokio runtime in the caller's session, if any.
///
/// `tokio::spawn` starts a task outside every session: its tool calls would be uncached for
/// session scope and invisible to loop detection. A task spawned here sees the session, and
/// is aborted when the session's run halts on a loop or ends.
///
/// ```
/// # use agent_cache::{AgentCacheSession, agent_cache};
/// #[agent_cache(resource = "page", scope = "session")]
/// async fn fetch_page(url: String) -> usize {
///     url.len()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let session = AgentCacheSession::new();
/// session
///     .run(async {
///         let task = agent_cache::spawn(fetch_page("https://example.com".into()));
///         task.await.unwrap();
///         fetch_page("https://example.com".into()).await; // a hit: same session
///     })
///     .await
///     .unwrap();
/// assert_eq!(session.metrics().hits, 1);
/// # }
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match current() {
        Some(run) => {
            let handle = tokio::spawn(InRun::new(Arc::clone(&run), future));
            let mut spawned = run.spawned.lock();
            spawned.retain(|task| !task.is_finished());
            spawned.push(handle.abort_handle());
            handle
        }
        None => tokio::spawn(future),
    }
}

/// The state of one run of a session.
///
/// A run of [`AgentCacheSession::run`] owns its loop detector, resources and session-scoped
/// caches. A served session (an MCP client's) runs each call as a run of its own that shares
/// them with the session's other calls, so a loop halts that call, not the session.
pub(crate) struct ActiveRun {
    pub(crate) session: Arc<SessionInner>,
    /// Its loop detector: its own, or its served session's.
    detector: Arc<RunDetector>,
    /// Resources invalidated by session-scoped invalidators in this run.
    pub(crate) resources: Arc<ResourceRegistry>,
    /// Session-scoped caches, by tool.
    pub(crate) caches: Arc<Mutex<SessionCaches>>,
    halted: OnceLock<AgentLoopDetected>,
    halt: Notify,
    spawned: Mutex<Vec<AbortHandle>>,
    /// A served call's loops that did not halt it (`Warn`, or `ShortCircuit` with a cached
    /// value), for the server to note in its result; `None` in a workflow run.
    noted: Option<Mutex<Vec<Detection>>>,
}

/// By the tool's address, hashed with foldhash: a session-scoped read looks its cache up here.
type SessionCaches = HashMap<usize, Box<dyn Any + Send + Sync>, foldhash::fast::RandomState>;

/// A loop detector and the hits counted under its lock: a workflow run's own, or shared by
/// every call of a served session. Listed in its session's `live_hits` while it lives.
pub(crate) struct RunDetector {
    session: Arc<SessionInner>,
    detector: SpinLock<LoopDetector>,
    /// Hits, counted while `detector` is locked: only the lock's holder writes it, so a hit
    /// costs a plain store, not an atomic read-modify-write.
    hits: Arc<AtomicU64>,
}

impl RunDetector {
    fn new(session: &Arc<SessionInner>) -> Arc<Self> {
        let hits = Arc::new(AtomicU64::new(0));
        if session.detection {
            session.live_hits.lock().push(Arc::clone(&hits));
        }
        Arc::new(RunDetector {
            session: Arc::clone(session),
            detector: SpinLock::new(LoopDetector::new(session.limits)),
            hits,
        })
    }

    #[inline]
    fn lock(&self) -> SpinGuard<'_, LoopDetector> {
        self.detector.lock()
    }
}

impl Drop for RunDetector {
    fn drop(&mut self) {
        // Under the lock `metrics` sums under: the hits count as live or as the session's,
        // once.
        let mut live = self.session.live_hits.lock();
        live.retain(|hits| !Arc::ptr_eq(hits, &self.hits));
        self.session
            .counters
            .add_hits(self.hits.load(Ordering::Relaxed));
    }
}

/// What a tool call does after loop detection has seen it.
pub(crate) enum Verdict {
    Proceed,
    /// `OnLoop::ShortCircuit`: return the cached value, or halt with this if there is none.
    ShortCircuit(Detection),
    /// The run has halted: never complete.
    Halt,
}

impl ActiveRun {
    fn new(session: Arc<SessionInner>) -> Self {
        ActiveRun {
            detector: RunDetector::new(&session),
            session,
            resources: Arc::default(),
            caches: Arc::default(),
            halted: OnceLock::new(),
            halt: Notify::new(),
            spawned: Mutex::new(Vec::new()),
            noted: None,
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.session.id
    }

    /// Whether this run detects loops: if not, calls need no signature.
    #[inline]
    pub(crate) fn detects(&self) -> bool {
        self.session.detection
    }

    /// Records a read the lookup found (`hit`) or not, decides what happens to it and counts
    /// it: `true` when it goes on (a hit returns its value, a miss loads), `false` when the
    /// run halts. `signature` is `None` when the run does not detect loops; `version` is the
    /// version of the read's resources (see [`LoopDetector::record_read`]).
    ///
    /// The hit path: one lock of the detector, which counts the hit with a plain store.
    /// Always inlined: a read has two call sites (a static global tool's, and the others'),
    /// and a call here would cost the hit more than this body does.
    #[inline(always)]
    pub(crate) fn check_read(
        &self,
        tool: &'static str,
        signature: Option<u64>,
        version: u64,
        hit: bool,
    ) -> bool {
        if self.halted.get().is_some() {
            count(Some(self), Event::Halted);
            return false;
        }
        let Some(signature) = signature else {
            count(Some(self), if hit { Event::Hit } else { Event::Miss });
            return true;
        };
        let mut detector = self.detector.lock();
        // Matched in place: the usual `None` moves no `Detection` about.
        match detector.record_read(tool, signature, version) {
            None => {
                if hit {
                    // Only the lock's holder writes it: a plain store.
                    let hits = &self.detector.hits;
                    hits.store(hits.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                }
                drop(detector);
                if !hit {
                    count(Some(self), Event::Miss);
                }
                true
            }
            Some(detection) => {
                drop(detector);
                self.read_detected(tool, detection, hit)
            }
        }
    }

    /// What a detected loop does to the read that completed it: [`check_read`]'s answer.
    ///
    /// [`check_read`]: Self::check_read
    #[cold]
    fn read_detected(&self, tool: &'static str, detection: Detection, hit: bool) -> bool {
        match self.on_detection(tool, detection) {
            // A read with a cached value returns it instead of running the tool.
            Verdict::Proceed | Verdict::ShortCircuit(_) if hit => {
                count(Some(self), Event::Hit);
                true
            }
            Verdict::Proceed => {
                count(Some(self), Event::Miss);
                true
            }
            // Nothing cached to return instead: halt as `Raise` does.
            Verdict::ShortCircuit(detection) => {
                self.halt(detection);
                count(Some(self), Event::Halted);
                false
            }
            Verdict::Halt => false,
        }
    }

    /// Records a tool call, before it runs, and decides what happens to it. `signature` is
    /// `None` when the run does not detect loops; `version` is a read's resources' version
    /// (see [`LoopDetector::record_read`]), `None` for an invalidator.
    pub(crate) fn check(
        &self,
        tool: &'static str,
        signature: Option<u64>,
        version: Option<u64>,
    ) -> Verdict {
        if self.halted.get().is_some() {
            count(Some(self), Event::Halted);
            return Verdict::Halt;
        }
        let Some(signature) = signature else {
            return Verdict::Proceed;
        };
        let detection = match version {
            Some(version) => self.detector.lock().record_read(tool, signature, version),
            None => self.detector.lock().record(tool, signature),
        };
        let Some(detection) = detection else {
            return Verdict::Proceed;
        };
        self.on_detection(tool, detection)
    }

    /// What a detected loop does to the call that completed it, as `on_loop` says.
    #[cold]
    fn on_detection(&self, tool: &'static str, detection: Detection) -> Verdict {
        count(Some(self), Event::Detection(detection.kind));
        if let (Some(noted), OnLoop::Warn | OnLoop::ShortCircuit) =
            (&self.noted, self.session.on_loop)
        {
            noted.lock().push(detection.clone());
        }
        match self.session.on_loop {
            OnLoop::Warn => {
                tracing::warn!(
                    target: "agent_cache",
                    session = %self.session.id,
                    tool,
                    kind = %detection.kind,
                    "{}",
                    detection.message
                );
                Verdict::Proceed
            }
            OnLoop::ShortCircuit => Verdict::ShortCircuit(detection),
            OnLoop::Raise => {
                self.halt(detection);
                count(Some(self), Event::Halted);
                Verdict::Halt
            }
        }
    }

    /// Records how a call ended, for retry-storm detection.
    pub(crate) fn record_outcome(&self, signature: Option<u64>, failed: bool) {
        let Some(signature) = signature else {
            return;
        };
        let mut detector = self.detector.lock();
        if failed {
            detector.record_failure(signature);
        } else {
            detector.record_success(signature);
        }
    }

    /// Halts the workflow: `run` returns this error and drops the workflow.
    pub(crate) fn halt(&self, detection: Detection) {
        let error = AgentLoopDetected {
            kind: detection.kind,
            tool: detection.tool,
            session_id: self.session.id.clone(),
            cycle: detection.cycle,
            message: detection.message,
        };
        tracing::warn!(
            target: "agent_cache",
            session = %error.session_id,
            tool = error.tool,
            kind = %error.kind,
            "halting the workflow: {}",
            error.message
        );
        if self.halted.set(error).is_ok() {
            self.halt.notify_waiters();
            for task in self.spawned.lock().drain(..) {
                task.abort();
            }
        }
    }

    async fn halted(&self) -> AgentLoopDetected {
        loop {
            let mut notified = pin!(self.halt.notified());
            notified.as_mut().enable();
            if let Some(error) = self.halted.get() {
                return error.clone();
            }
            notified.await;
        }
    }

    /// Ends the run: its spawned tasks are aborted and its session-scoped entries dropped.
    fn finish(&self) {
        self.abort_spawned();
        self.caches.lock().clear();
    }

    fn abort_spawned(&self) {
        for task in self.spawned.lock().drain(..) {
            task.abort();
        }
    }
}

/// A session that serves one client's calls as they come, each a run of its own (an MCP
/// client's tool calls): session-scoped entries and loop detection span all of them, and a
/// loop halts the call that completed it while the session goes on serving.
#[cfg(feature = "rmcp")]
pub(crate) struct ServedSession {
    session: AgentCacheSession,
    detector: Arc<RunDetector>,
    resources: Arc<ResourceRegistry>,
    caches: Arc<Mutex<SessionCaches>>,
}

/// How a served call ended.
#[cfg(feature = "rmcp")]
pub(crate) enum Served<T> {
    /// It returned `output`; `noted` are the loops it completed that did not halt it.
    Done { output: T, noted: Vec<Detection> },
    /// It completed a loop and was halted there.
    Halted(AgentLoopDetected),
}

#[cfg(feature = "rmcp")]
impl ServedSession {
    pub(crate) fn new(session: AgentCacheSession) -> Self {
        ServedSession {
            detector: RunDetector::new(&session.inner),
            resources: Arc::default(),
            caches: Arc::default(),
            session,
        }
    }

    pub(crate) fn session(&self) -> &AgentCacheSession {
        &self.session
    }

    pub(crate) fn on_loop(&self) -> OnLoop {
        self.session.inner.on_loop
    }

    /// Runs one call in the session. Tasks it spawned through [`spawn`] are aborted when it
    /// ends; its session-scoped entries stay for the session's next calls.
    pub(crate) async fn call<F: Future>(&self, call: F) -> Served<F::Output> {
        let active = Arc::new(ActiveRun {
            session: Arc::clone(&self.session.inner),
            detector: Arc::clone(&self.detector),
            resources: Arc::clone(&self.resources),
            caches: Arc::clone(&self.caches),
            halted: OnceLock::new(),
            halt: Notify::new(),
            spawned: Mutex::new(Vec::new()),
            noted: Some(Mutex::new(Vec::new())),
        });
        let outcome = InRun::new(Arc::clone(&active), async {
                tokio::select! {
                    biased;
                    error = active.halted() => Served::Halted(error),
                    output = call => Served::Done {
                        output,
                        noted: active.noted.as_ref().map(|noted| std::mem::take(&mut *noted.lock())).unwrap_or_default(),
                    },
                }
            })
            .await;
        active.abort_spawned();
        outcome
    }
}

/// Counts an event in the session it happened in, or globally outside sessions: one counter
/// per event on the hit path, [`metrics`] sums the sessions in.
#[inline]
pub(crate) fn count(run: Option<&ActiveRun>, event: Event<'_>) {
    match run {
        Some(run) => run.session.counters.count(event),
        None => GLOBAL.count(event),
    }
}

/// Every session alive, for [`metrics`] to sum in.
static LIVE: Mutex<Vec<Weak<SessionInner>>> = Mutex::new(Vec::new());

/// The process-wide aggregate: every session, alive or gone, and every tool call made
/// outside one.
pub fn metrics() -> AgentMetrics {
    let total = Counters::new();
    let live = LIVE.lock();
    GLOBAL.add_to(&total);
    for session in live.iter().filter_map(Weak::upgrade) {
        session.add_to(&total);
    }
    total.snapshot()
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        // Under the lock `metrics` sums under: a session counts as live or as gone, once.
        let mut live = LIVE.lock();
        live.retain(|session| session.strong_count() > 0);
        self.counters.add_to(&GLOBAL);
    }
}
