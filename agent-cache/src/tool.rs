//! [`Tool`]: the runtime of one `#[agent_cache]` or `#[agent_invalidator]` function.

use std::any::Any;
use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{Future, pending};
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use cache_core::__private::{
    CacheSlot, FleetKey, FleetValue, KeyPart, get_uncounted_then, with_fleet_coherence,
};
use cache_core::fleet::{Delivery, FleetSetup, Postcard};
use cache_core::{AsyncCache, Engine};

use crate::detector::CallHasher;
use crate::fleet;
use crate::metrics::Event;
use crate::resource::{Node, ResourceRegistry};
use crate::session::{self, ActiveRun, Verdict, count};

/// Resources invalidated by global-scope invalidators.
static GLOBAL_RESOURCES: LazyLock<ResourceRegistry> = LazyLock::new(ResourceRegistry::default);

/// Where a tool's entries live and which entries its invalidations reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Process-wide; reached by global invalidations.
    Global,
    /// In the running session; reached by global invalidations and by session invalidations
    /// in that session.
    Session,
}

/// A tool as its attribute declares it.
#[derive(Debug)]
pub struct ToolSpec {
    /// The function's bare name, for loop messages, logs and metrics.
    pub name: &'static str,
    /// Its scope.
    pub scope: Scope,
    /// The resources as declared (`cart:{user_id}`), for metrics.
    pub resources: &'static [&'static str],
    /// Whether a resource names a parameter, so must be built at each call.
    pub parameterised: bool,
    /// Entries of a read tool, at most (per session for session scope).
    pub maxsize: u64,
    /// Time to live of a read tool's entries; `None` never expires.
    pub ttl_nanos: Option<u64>,
    /// The storage engine of a read tool's caches; `None`: the default engine.
    pub engine: Option<Engine>,
}

/// One tool's runtime, in a `static` of the expansion.
pub struct Tool {
    spec: ToolSpec,
    /// The global cache, `AsyncCache<(K, u64), Tagged<V>>`, made on first use.
    global: CacheSlot,
    /// A `shared = true` tool's cache in the fleet's shared tier, `AsyncCache<(K, u64), V>`
    /// keyed by the fleet-wide version of the resources; it stores nothing in the process.
    shared: CacheSlot,
    /// For a global tool whose resources name no parameter: their nodes, resolved once and
    /// kept for good, so its entries need not hold them.
    static_nodes: OnceLock<StaticNodes>,
    /// Whether it is such a tool: global, and no resource names a parameter.
    static_global: bool,
}

/// A cached value with the resource nodes its version was taken from, which keeps them (and
/// so that version) alive as long as the entry; `None` when the tool holds them itself. A thin
/// pointer: a cache's entries fill the CPU's caches, and a smaller entry is a faster hit.
#[derive(Clone)]
struct Tagged<V> {
    value: V,
    _nodes: Option<Arc<Vec<Arc<Node>>>>,
}

/// The resource nodes of a global tool whose resources name no parameter, held for good, and
/// the counters their version sums (the registry's epoch first), flattened: a hit loads them
/// and adds them up, nothing else.
struct StaticNodes {
    _nodes: Box<[Arc<Node>]>,
    counters: Box<[&'static AtomicU64]>,
}

impl StaticNodes {
    fn resolve(resources: &[Cow<'_, str>]) -> Self {
        let registry: &'static ResourceRegistry = &GLOBAL_RESOURCES;
        let nodes: Box<[Arc<Node>]> = resources.iter().map(|r| registry.resolve(r)).collect();
        // Each node leaks one count: the tool holds its nodes for good anyway (its `static`
        // is never dropped), and so its counters live as long as the program.
        let counters = std::iter::once(registry.epoch_counter())
            .chain(
                nodes
                    .iter()
                    .flat_map(|node| Node::counters(Box::leak(Box::new(Arc::clone(node))))),
            )
            .collect();
        StaticNodes {
            _nodes: nodes,
            counters,
        }
    }

    /// The version of a read now: what [`Nodes::version`] would sum.
    #[inline]
    fn version(&self) -> u64 {
        let load = |counter: &AtomicU64| counter.load(Ordering::Acquire);
        match &*self.counters {
            // One resource with no parent, the usual case: no loop to set up.
            [epoch, below, own] => load(epoch)
                .wrapping_add(load(below))
                .wrapping_add(load(own)),
            counters => counters
                .iter()
                .fold(0, |sum, counter| sum.wrapping_add(load(counter))),
        }
    }
}

/// The resource nodes one call's version is taken from.
enum Nodes {
    /// Held by the tool for good (its [`StaticNodes`]).
    Static,
    /// Resolved for this call; entries hold them.
    Resolved(Arc<Vec<Arc<Node>>>),
}

impl Nodes {
    fn version(nodes: &[Arc<Node>]) -> u64 {
        nodes
            .iter()
            .map(|node| node.version())
            .fold(GLOBAL_RESOURCES.epoch(), u64::wrapping_add)
    }

    fn keep_alive(self) -> Option<Arc<Vec<Arc<Node>>>> {
        match self {
            Nodes::Static => None,
            Nodes::Resolved(nodes) => Some(nodes),
        }
    }
}

/// A read tool call, from [`Tool::read`] and [`Tool::try_read`]: its value when the lookup
/// found it, which a hit returns without building or boxing a future; otherwise what it waits
/// for (a load), boxed. The expansion matches it and awaits only `Waiting`.
#[must_use = "a read returns its value only when awaited"]
pub enum Read<T, W> {
    /// A hit: the value.
    Done(T),
    /// A miss: the load (or a halted run, which never completes).
    Waiting(Pin<Box<W>>),
}

impl<T, W: Future<Output = T>> Read<T, W> {
    /// Its value, waiting for it on a miss.
    #[cfg(feature = "rmcp")]
    pub(crate) async fn value(self) -> T {
        match self {
            Read::Done(value) => value,
            Read::Waiting(wait) => wait.await,
        }
    }
}

/// What a read found before it may have to wait.
enum Lookup<K: 'static, V: 'static> {
    Hit(V),
    /// The run halted on a loop: the call never completes.
    Halt,
    /// A session-scoped tool outside a session: run the body, cache nothing.
    Uncached(K),
    /// Boxed: the hit path returns this enum, and a small one costs it less.
    Miss(Box<Miss<K, V>>),
}

/// A read in a run that halted on a loop: it never completes.
struct Halted;

/// What a miss needs to load.
struct Miss<K: 'static, V: 'static> {
    cache: CacheRef<K, V>,
    key: (K, u64),
    nodes: Nodes,
    signature: Option<u64>,
}

/// The cache one call reads: the tool's own for good, or a session's.
enum CacheRef<K: 'static, V: 'static> {
    Global(&'static ToolCache<K, V>),
    Session(ToolCache<K, V>),
}

impl<K: 'static, V: 'static> From<&'static ToolCache<K, V>> for CacheRef<K, V> {
    fn from(cache: &'static ToolCache<K, V>) -> Self {
        CacheRef::Global(cache)
    }
}

impl<K: 'static, V: 'static> std::ops::Deref for CacheRef<K, V> {
    type Target = ToolCache<K, V>;

    fn deref(&self) -> &ToolCache<K, V> {
        match self {
            CacheRef::Global(cache) => cache,
            CacheRef::Session(cache) => cache,
        }
    }
}

type ToolCache<K, V> = AsyncCache<(K, u64), Tagged<V>>;

impl Tool {
    /// A tool's runtime, for a `static`.
    pub const fn new(spec: ToolSpec) -> Self {
        Tool {
            static_global: matches!(spec.scope, Scope::Global) && !spec.parameterised,
            spec,
            global: CacheSlot::new(),
            shared: CacheSlot::new(),
            static_nodes: OnceLock::new(),
        }
    }

    /// The tool's name, as loop reports give it.
    #[cfg(feature = "rmcp")]
    pub(crate) fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Identifies calls of this tool with these arguments, for loop detection.
    #[inline]
    fn signature<A: Hash + ?Sized>(&'static self, arguments: &A) -> u64 {
        let mut hasher = CallHasher::default();
        std::ptr::from_ref(self).hash(&mut hasher);
        arguments.hash(&mut hasher);
        hasher.finish()
    }

    /// A read tool call with an infallible body: [`try_read`](Self::try_read) for a body that
    /// cannot fail.
    #[inline]
    pub fn read<K, V, F>(
        &'static self,
        key: K,
        resources: &[Cow<'_, str>],
        body: impl FnOnce() -> F,
    ) -> Read<V, impl Future<Output = V>>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
        F: Future<Output = V>,
    {
        match session::with_current(|run| self.lookup::<K, V>(run, key, resources)) {
            Lookup::Hit(value) => Read::Done(value),
            lookup => Read::Waiting(Box::pin(async move {
                let load = |_: &K| async { Ok::<_, Arc<Infallible>>(body().await) };
                match self.wait(lookup, load, |_| true).await {
                    Ok(value) => value,
                    Err(never) => match *never {},
                }
            })),
        }
    }

    /// A read tool call: a hit, or one load shared by every concurrent caller of these
    /// arguments in this scope. Only `Ok` values are cached. `body` makes the tool's future,
    /// on a miss only.
    ///
    /// The lookup and loop detection happen in this call, so that a hit never builds a
    /// future: the macros call it in the tool's own `async fn` and await it at once.
    #[inline]
    pub fn try_read<K, V, E, F>(
        &'static self,
        key: K,
        resources: &[Cow<'_, str>],
        body: impl FnOnce() -> F,
    ) -> Read<Result<V, Arc<E>>, impl Future<Output = Result<V, Arc<E>>>>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        self.read_with(key, resources, body, |_| true)
    }

    /// [`try_read`](Self::try_read), where `failed` tells which errors are failures for
    /// retry-storm detection (an MCP tool's result that needs another round trip is not
    /// cached, and is no failure either).
    #[inline]
    pub(crate) fn read_with<K, V, E, F>(
        &'static self,
        key: K,
        resources: &[Cow<'_, str>],
        body: impl FnOnce() -> F,
        failed: fn(&E) -> bool,
    ) -> Read<Result<V, Arc<E>>, impl Future<Output = Result<V, Arc<E>>>>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        match session::with_current(|run| self.lookup::<K, V>(run, key, resources)) {
            Lookup::Hit(value) => Read::Done(Ok(value)),
            lookup => Read::Waiting(Box::pin(self.wait(
                lookup,
                |_| async { body().await.map_err(Arc::new) },
                failed,
            ))),
        }
    }

    /// [`try_read`](Self::try_read) for a tool with `shared = true`: on a miss here, the
    /// result comes from the fleet's shared tier when another process cached it under the
    /// current fleet-wide version of its resources, else one process of the fleet loads it.
    /// `fleet` names the tool's results across the fleet.
    pub async fn try_read_shared<K, V, E, F>(
        &'static self,
        fleet: &'static str,
        key: K,
        resources: &[Cow<'_, str>],
        body: impl FnOnce() -> F,
    ) -> Result<V, Arc<E>>
    where
        K: FleetKey,
        V: FleetValue,
        E: Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        let lookup = session::with_current(|run| self.lookup::<K, V>(run, key, resources));
        let load = |key: &K| self.through_fleet(fleet, key.clone(), resources, body);
        self.wait(lookup, load, |_| true).await
    }

    /// [`try_read_shared`](Self::try_read_shared) with an infallible body.
    pub async fn read_shared<K, V, F>(
        &'static self,
        fleet: &'static str,
        key: K,
        resources: &[Cow<'_, str>],
        body: impl FnOnce() -> F,
    ) -> V
    where
        K: FleetKey,
        V: FleetValue,
        F: Future<Output = V>,
    {
        let body = || async { Ok(body().await) };
        let read = self.try_read_shared::<K, V, Infallible, _>(fleet, key, resources, body);
        match read.await {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// What a read waits for once looked up: its value (a hit), a halted run (forever), or
    /// `load` (given the arguments, on a miss only) shared by every concurrent caller of these
    /// arguments in this scope; a session-scoped tool outside a session runs it uncached.
    /// `failed` tells which of its errors are failures, for retry-storm detection.
    async fn wait<K, V, E, L, Fut>(
        &'static self,
        lookup: Lookup<K, V>,
        load: L,
        failed: fn(&E) -> bool,
    ) -> Result<V, Arc<E>>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        L: FnOnce(&K) -> Fut,
        Fut: Future<Output = Result<V, Arc<E>>>,
    {
        match lookup {
            Lookup::Hit(value) => Ok(value),
            Lookup::Halt => pending().await,
            Lookup::Uncached(key) => load(&key).await,
            Lookup::Miss(miss) => {
                let Miss {
                    cache,
                    key,
                    nodes,
                    signature,
                } = *miss;
                let load = load(&key.0);
                let loaded = cache
                    .try_get_with(key, async {
                        load.await.map(|value| Tagged {
                            value,
                            _nodes: nodes.keep_alive(),
                        })
                    })
                    .await
                    // The load's own error, shared by the callers coalesced on it.
                    .map_err(Arc::unwrap_or_clone);
                if let Some(run) = signature.and(session::current()) {
                    run.record_outcome(signature, loaded.as_ref().is_err_and(|e| failed(e)));
                }
                loaded.map(|tagged| tagged.value)
            }
        }
    }

    /// A shared tool's load: from the fleet's shared tier, keyed by the arguments and the
    /// fleet-wide version of the resources; without a fleet (or when it cannot answer in
    /// time), `body` here.
    async fn through_fleet<K, V, E, F>(
        &'static self,
        fleet: &'static str,
        arguments: K,
        resources: &[Cow<'_, str>],
        body: impl FnOnce() -> F,
    ) -> Result<V, Arc<E>>
    where
        K: FleetKey,
        V: FleetValue,
        E: Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        let provider = cache_core::fleet::installed();
        let tiers = provider.as_ref().and_then(|provider| {
            let versions = provider.resource_versions()?;
            let (channel, tier) = provider.shared(fleet, 0)?;
            Some((versions, channel, tier))
        });
        let Some((versions, channel, tier)) = tiers else {
            return body().await.map_err(Arc::new);
        };
        let resources: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
        let version = tokio::time::timeout(versions.timeout(), versions.version(resources));
        let Ok(Ok(version)) = version.await else {
            // The fleet cannot tell the resources' versions now: no shared result is safe.
            return body().await.map_err(Arc::new);
        };
        let cache: &'static AsyncCache<(K, u64), V> = self.shared.get_or_init(|| {
            // Stores nothing here: the tool's own cache is this process's copy.
            let builder = AsyncCache::builder().maxsize(0);
            let builder = match self.spec.ttl_nanos {
                Some(nanos) => builder.default_ttl(Duration::from_nanos(nanos)),
                None => builder,
            };
            builder
                .fleet(FleetSetup::shared::<Postcard>(channel, tier))
                .build()
        });
        cache.try_get_with((arguments, version), body()).await
    }

    /// Everything a read does before it may have to wait: the lookup, and loop detection.
    /// Synchronous, so the session is borrowed rather than counted.
    ///
    /// The lookup comes first, then the call is recorded for loop detection; what a halted run
    /// or a detected loop makes of the call does not depend on the order.
    #[inline(always)]
    fn lookup<K, V>(
        &'static self,
        run: Option<&ActiveRun>,
        key: K,
        resources: &[Cow<'_, str>],
    ) -> Lookup<K, V>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
    {
        // Resolved before the call is recorded: a repeat whose version moved is progress.
        if self.static_global {
            // The usual kind, apart so that its hit handles no enum: nothing to match or drop.
            let nodes = self
                .static_nodes
                .get_or_init(|| StaticNodes::resolve(resources));
            let cache = self.global.get_or_init(|| self.build());
            return self.look_in(run, key, cache, nodes.version(), Nodes::Static);
        }
        self.lookup_placed(run, key, resources)
    }

    /// [`lookup`](Self::lookup) for a tool whose resources are looked up at each call: out of
    /// line, since that costs more than a call. A hit needs only the resources' version and the
    /// cache, so it neither creates nor keeps a resource node and allocates nothing; a miss
    /// resolves the nodes, which its entry keeps, and looks again under their version.
    #[inline(never)]
    fn lookup_placed<K, V>(
        &'static self,
        run: Option<&ActiveRun>,
        key: K,
        resources: &[Cow<'_, str>],
    ) -> Lookup<K, V>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
    {
        let key = match self.version_now(run, resources) {
            Some(version) => {
                let key = (key, version);
                if let Some(value) = self.cached::<K, V>(run, &key) {
                    let Ok(_) = self.record_read(run, &key.0, version, true) else {
                        return Lookup::Halt;
                    };
                    return self.found(run, value);
                }
                key.0
            }
            None => key,
        };
        let Some((cache, nodes, version)) = self.place::<K, V>(run, resources) else {
            // A session-scoped tool outside any session (so `run` is `None`): nothing to record.
            count(run, Event::Miss);
            return Lookup::Uncached(key);
        };
        self.look_in(run, key, cache, version, nodes)
    }

    /// The version a read of `resources` is cached under now, if each of them has a node:
    /// what [`place`](Self::place) would take, without creating or keeping a node. `None` when
    /// one has none (no entry depends on it, so none can be found), or for a session-scoped
    /// tool outside a session.
    fn version_now(&self, run: Option<&ActiveRun>, resources: &[Cow<'_, str>]) -> Option<u64> {
        let mut version = GLOBAL_RESOURCES.epoch();
        for resource in resources {
            version = version.wrapping_add(GLOBAL_RESOURCES.version_of(resource)?);
        }
        if self.spec.scope == Scope::Session {
            let run = run?;
            for resource in resources {
                version = version.wrapping_add(run.resources.version_of(resource)?);
            }
        }
        Some(version)
    }

    /// The value cached under `key` in the cache [`place`](Self::place) would pick, if that
    /// cache exists (a session's is not created here); counts nothing.
    fn cached<K, V>(&'static self, run: Option<&ActiveRun>, key: &(K, u64)) -> Option<V>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
    {
        let value = |cache: &ToolCache<K, V>| {
            get_uncounted_then(cache, key, |tagged| {
                tagged.map(|tagged| tagged.value.clone())
            })
        };
        match (self.spec.scope, run) {
            (Scope::Global, _) => value(self.global.get_or_init(|| self.build())),
            (Scope::Session, None) => None,
            (Scope::Session, Some(run)) => {
                // Cloned (one reference count) so that the lookup holds no session-wide lock.
                let cache = {
                    let caches = run.caches.lock();
                    let cache = caches.get(&(std::ptr::from_ref(self) as usize))?;
                    typed::<K, V>(&**cache).clone()
                };
                value(&cache)
            }
        }
    }

    /// [`lookup`](Self::lookup) in `cache`, where the read's resources are at `version`.
    #[inline(always)]
    fn look_in<K, V, C>(
        &'static self,
        run: Option<&ActiveRun>,
        key: K,
        cache: C,
        version: u64,
        nodes: Nodes,
    ) -> Lookup<K, V>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
        C: std::ops::Deref<Target = ToolCache<K, V>> + Into<CacheRef<K, V>>,
    {
        let key = (key, version);
        // Counted by the agent layer only (the tool cache's own metrics are never read).
        let hit = get_uncounted_then(&cache, &key, |tagged| {
            tagged.map(|tagged| tagged.value.clone())
        });
        let Ok(signature) = self.record_read(run, &key.0, version, hit.is_some()) else {
            return Lookup::Halt;
        };
        if let Some(hit) = hit {
            return self.found(run, hit);
        }
        self.missed(run, cache.into(), key, nodes, signature)
    }

    /// A read's hit, once recorded.
    #[inline(always)]
    fn found<K, V>(&'static self, run: Option<&ActiveRun>, value: V) -> Lookup<K, V> {
        tracing::debug!(target: "agent_cache", tool = self.spec.name, session = run.map(ActiveRun::id), "hit");
        Lookup::Hit(value)
    }

    /// Records a read of `arguments` for its run, or for the process outside one: its hit or
    /// miss, and the call for loop detection. Returns the call's signature (for a run that
    /// detects loops), with which a miss records its outcome, or `Err(Halted)` when the run
    /// halted: the read never completes.
    #[inline(always)]
    fn record_read<K: KeyPart>(
        &'static self,
        run: Option<&ActiveRun>,
        arguments: &K,
        version: u64,
        hit: bool,
    ) -> Result<Option<u64>, Halted> {
        let Some(run) = run else {
            count(None, if hit { Event::Hit } else { Event::Miss });
            return Ok(None);
        };
        // Hashed only for a run that detects loops: nothing else reads it.
        let signature = run.detects().then(|| self.signature(arguments));
        if run.check_read(self.spec.name, signature, version, hit) {
            Ok(signature)
        } else {
            Err(Halted)
        }
    }

    /// [`look_in`](Self::look_in)'s miss: out of line, so that the hit it is inlined for
    /// carries none of it.
    #[cold]
    #[inline(never)]
    fn missed<K, V>(
        &'static self,
        run: Option<&ActiveRun>,
        cache: CacheRef<K, V>,
        key: (K, u64),
        nodes: Nodes,
        signature: Option<u64>,
    ) -> Lookup<K, V> {
        tracing::debug!(target: "agent_cache", tool = self.spec.name, session = run.map(ActiveRun::id), "miss");
        Lookup::Miss(Box::new(Miss {
            cache,
            key,
            nodes,
            signature,
        }))
    }

    /// An invalidator call: invalidates its resources, runs the mutation, invalidates them
    /// again (so no read that overlapped the mutation stays cached) and returns its output
    /// unchanged. `signature` comes from [`signature_of`](Self::signature_of); `failed` tells
    /// a failed mutation, for retry-storm detection.
    pub async fn mutate<F: Future>(
        &'static self,
        signature: u64,
        resources: &[Cow<'_, str>],
        failed: fn(&F::Output) -> bool,
        body: F,
    ) -> F::Output {
        let run = session::current();
        let run = run.as_deref();
        if let Some(run) = run {
            let signature = run.detects().then_some(signature);
            match run.check(self.spec.name, signature, None) {
                Verdict::Proceed => {}
                // A mutation has no cached value to return instead.
                Verdict::ShortCircuit(detection) => {
                    run.halt(detection);
                    count(Some(run), Event::Halted);
                    return pending().await;
                }
                Verdict::Halt => return pending().await,
            }
        }
        count(run, Event::Invalidation(self.spec.resources));
        tracing::debug!(target: "agent_cache", tool = self.spec.name, session = run.map(ActiveRun::id), resources = ?resources, "invalidate");
        // The fleet learns of the first invalidation too, but only the second is waited for:
        // it is the one the call returns after.
        drop(self.invalidate(run, resources));
        // The second invalidation also runs if the mutation is cancelled (a timeout, a halted
        // run) or panics: a read that overlapped it must not stay cached either way.
        let mut again = InvalidateOnDrop {
            tool: self,
            run,
            resources,
            armed: true,
        };
        let output = body.await;
        again.armed = false;
        let deliveries = self.invalidate(run, resources);
        if let Some(run) = run {
            run.record_outcome(run.detects().then_some(signature), failed(&output));
        }
        // Returns once Redis acknowledged the fleet invalidation (or queued it, when Redis
        // cannot be reached), so every other process has it within the propagation delay.
        for delivery in deliveries {
            delivery.await;
        }
        output
    }

    /// An invalidator call's loop signature. Its arguments join it through their `Debug`
    /// form, so that an argument such as an `f64` amount, which cannot be hashed, still tells
    /// calls apart. Called before [`mutate`](Self::mutate), not inside it, so that the
    /// `&dyn Debug` arguments (not `Send`) are never held across an `.await`.
    pub fn signature_of(&'static self, arguments: &[&dyn Debug]) -> u64 {
        struct HashWriter<'a>(&'a mut CallHasher);
        impl std::fmt::Write for HashWriter<'_> {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                self.0.write(s.as_bytes());
                Ok(())
            }
        }
        let mut hasher = CallHasher::default();
        std::ptr::from_ref(self).hash(&mut hasher);
        for argument in arguments {
            // Writing into a hasher cannot fail.
            let _ = std::fmt::write(
                &mut HashWriter(&mut hasher),
                format_args!("{argument:?}\u{1f}"),
            );
        }
        hasher.finish()
    }

    /// Invalidates `resources` in this tool's scope; a global invalidation is also published
    /// to the other processes of the installed fleet, whose deliveries are returned.
    fn invalidate(&self, run: Option<&ActiveRun>, resources: &[Cow<'_, str>]) -> Vec<Delivery> {
        match (self.spec.scope, run) {
            (Scope::Global, _) => {
                for resource in resources {
                    GLOBAL_RESOURCES.invalidate(resource);
                }
                match fleet::channel(&GLOBAL_RESOURCES) {
                    Some(channel) => resources
                        .iter()
                        .map(|resource| fleet::publish(&*channel, resource))
                        .collect(),
                    None => Vec::new(),
                }
            }
            (Scope::Session, Some(run)) => {
                for resource in resources {
                    run.resources.invalidate(resource);
                }
                Vec::new()
            }
            // No session: no session entries to reach.
            (Scope::Session, None) => Vec::new(),
        }
    }

    /// Where a read of a tool other than a static global one looks, the resource nodes its
    /// version is taken from, and that version: the tool's global cache, or for a
    /// session-scoped tool the session's (`None` outside a session), and the global nodes,
    /// with the session's for a session-scoped tool.
    #[inline]
    fn place<K, V>(
        &'static self,
        run: Option<&ActiveRun>,
        resources: &[Cow<'_, str>],
    ) -> Option<(CacheRef<K, V>, Nodes, u64)>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
    {
        let global = resources.iter().map(|r| GLOBAL_RESOURCES.resolve(r));
        let (cache, nodes): (_, Vec<Arc<Node>>) = match (self.spec.scope, run) {
            (Scope::Global, _) => (
                CacheRef::Global(self.global.get_or_init(|| self.build())),
                global.collect(),
            ),
            (Scope::Session, None) => return None,
            (Scope::Session, Some(run)) => {
                let mut caches = run.caches.lock();
                let cache = caches
                    .entry(std::ptr::from_ref(self) as usize)
                    .or_insert_with(|| Box::new(self.build::<K, V>()));
                let cache = CacheRef::Session(typed::<K, V>(&**cache).clone());
                drop(caches);
                let session = resources.iter().map(|r| run.resources.resolve(r));
                (cache, global.chain(session).collect())
            }
        };
        let version = Nodes::version(&nodes);
        Some((cache, Nodes::Resolved(Arc::new(nodes)), version))
    }

    fn build<K, V>(&self) -> ToolCache<K, V>
    where
        K: KeyPart,
        V: Clone + Send + Sync + 'static,
    {
        let mut builder = AsyncCache::builder()
            .maxsize(self.spec.maxsize)
            .engine(self.spec.engine.unwrap_or_default());
        if let Some(nanos) = self.spec.ttl_nanos {
            builder = builder.default_ttl(Duration::from_nanos(nanos));
        }
        // With a fleet, entries stored while it cannot be heard live at most its staleness
        // bound (the fleet flushes the rest through the registry's epoch).
        if let Some(channel) = fleet::channel(&GLOBAL_RESOURCES) {
            builder = with_fleet_coherence(builder, channel);
        }
        builder.build()
    }
}

/// Invalidates a mutation's resources when dropped armed: after a mutation that was cancelled
/// or panicked (one that returned invalidates, and waits for the fleet, itself).
struct InvalidateOnDrop<'a> {
    tool: &'a Tool,
    run: Option<&'a ActiveRun>,
    resources: &'a [Cow<'a, str>],
    armed: bool,
}

impl Drop for InvalidateOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            drop(self.tool.invalidate(self.run, self.resources));
        }
    }
}

fn typed<K, V>(erased: &(dyn Any + Send + Sync)) -> &ToolCache<K, V>
where
    K: KeyPart,
    V: Clone + Send + Sync + 'static,
{
    erased.downcast_ref().unwrap_or_else(|| {
        panic!(
            "an agent tool's key or value type differs between two of its instantiations; \
             a generic tool keeps one cache, so its key and return type must not depend on \
             its generic parameters"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(engine: Option<Engine>) -> ToolSpec {
        ToolSpec {
            name: "read",
            scope: Scope::Global,
            resources: &["thing"],
            parameterised: false,
            maxsize: 2,
            ttl_nanos: Some(60_000_000_000),
            engine,
        }
    }

    #[test]
    fn a_tool_builds_its_caches_on_the_engine_its_attribute_names() {
        for (engine, built) in [
            (None, Engine::default()),
            (Some(Engine::Moka), Engine::Moka),
            (Some(Engine::QuickCache), Engine::QuickCache),
        ] {
            let cache = Tool::new(spec(engine)).build::<u64, u64>();
            assert_eq!(cache.engine(), built);
            assert_eq!(cache.metrics().capacity, Some(2));
        }
    }
}
