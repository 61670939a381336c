//! `#[async_lru(fleet = "...")]` and `#[async_ttl(fleet = "...")]` through an installed fleet,
//! against a real `redis-server`. The "other process" is a second fleet connection holding a
//! plain `AsyncCache` of the same name. One test, in steps, because a fleet is installed once
//! per process and the first step must run before that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cache_core::fleet::FleetLink;
use cache_core::{AsyncCache, async_lru, async_ttl};
use tests::fleet::{connect, until};
use tests::redis_server::RedisServer;

static LOADS: AtomicU64 = AtomicU64::new(0);

#[async_ttl(time_to_live = 60, fleet = "early")]
async fn early(id: u64) -> u64 {
    id
}

#[async_lru(maxsize = 100, fleet = "users")]
async fn user(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("user-{id}")
}

#[async_ttl(time_to_live = 60, fleet = "names")]
async fn name(query: &str) -> String {
    query.to_uppercase()
}

#[async_lru(fleet = "pairs")]
async fn pair(a: u64, b: &str) -> String {
    format!("{a}{b}")
}

static SHARED_LOADS: AtomicU64 = AtomicU64::new(0);

#[async_ttl(time_to_live = 60, fleet = "shared-users", shared = true, version = 3)]
async fn shared_user(id: u64) -> Result<String, String> {
    SHARED_LOADS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("shared-{id}"))
}

struct Repo;

impl Repo {
    #[async_ttl(time_to_live = 60, skip_args = 1, fleet = "orders")]
    async fn order(&self, id: u64) -> u64 {
        id * 10
    }
}

const SOON: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_fns_with_a_fleet_name_are_coherent_across_processes() {
    // Before any fleet is installed: process-local, and the metrics say so.
    assert_eq!(early(1).await, 1);
    let info = early::metrics()
        .fleet
        .expect("a fleet cache reports its fleet");
    assert_eq!(
        (info.name.as_str(), info.link),
        ("early", FleetLink::NotInstalled)
    );

    let redis = RedisServer::start();
    let this = connect(&redis.url()).await;
    this.install();
    let other = connect(&redis.url()).await;
    let users: AsyncCache<u64, String> = AsyncCache::builder().fleet(other.cache("users")).build();

    // Another process invalidates: the fn loads again.
    assert_eq!(user(1).await, "user-1");
    assert_eq!(user(1).await, "user-1");
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
    assert_eq!(
        user::metrics().fleet.map(|f| f.link),
        Some(FleetLink::Connected)
    );
    users.invalidate(&1);
    other.flush().await;
    assert!(until(SOON, || user::metrics().size == 0).await);
    assert_eq!(user(1).await, "user-1");
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);

    // This process's helpers reach the other one.
    users.insert(2, "theirs".into());
    other.flush().await;
    user::invalidate(2);
    this.flush().await;
    assert!(until(SOON, || users.get(&2).is_none()).await);
    users.insert(3, "theirs".into());
    users.insert(4, "theirs".into());
    other.flush().await;
    user::clear();
    this.flush().await;
    assert!(until(SOON, || users.metrics().size == 0).await);

    // A `&str` argument is keyed as a `String`, and matches the other process's key.
    let names: AsyncCache<String, String> =
        AsyncCache::builder().fleet(other.cache("names")).build();
    assert_eq!(name("ada").await, "ADA");
    names.invalidate("ada");
    other.flush().await;
    assert!(until(SOON, || name::metrics().size == 0).await);

    // A key of several arguments is their tuple.
    let pairs: AsyncCache<(u64, String), String> =
        AsyncCache::builder().fleet(other.cache("pairs")).build();
    assert_eq!(pair(1, "x").await, "1x");
    pairs.invalidate(&(1, "x".to_owned()));
    other.flush().await;
    assert!(until(SOON, || pair::metrics().size == 0).await);

    // Methods: the helper publishes too, even before this process called the method.
    let orders: AsyncCache<u64, u64> = AsyncCache::builder().fleet(other.cache("orders")).build();
    orders.insert(7, 70);
    other.flush().await;
    Repo::order_invalidate(7);
    this.flush().await;
    assert!(until(SOON, || orders.get(&7).is_none()).await);
    assert_eq!(Repo.order(7).await, 70);

    // `shared = true`: the value this process loaded is in Redis for the other process, as
    // schema version 3; another version does not read it.
    assert_eq!(shared_user(1).await.unwrap(), "shared-1");
    let theirs: AsyncCache<u64, String> = AsyncCache::builder()
        .fleet(other.cache("shared-users").shared().version(3))
        .build();
    assert!(
        until(SOON, || redis
            .command(&["EXISTS", "test:d:shared-users\u{0}\u{1}"])
            == "1")
        .await
    );
    let read = theirs
        .get_with(1, async { unreachable!("an L2 hit") })
        .await;
    assert_eq!(read, "shared-1");
    assert!(theirs.metrics().l2_hits >= 1);
    // And the other way: their invalidation removes it everywhere, so the fn loads again.
    theirs.invalidate(&1);
    other.flush().await;
    assert!(until(SOON, || shared_user::metrics().size == 0).await);
    assert_eq!(shared_user(1).await.unwrap(), "shared-1");
    assert_eq!(SHARED_LOADS.load(Ordering::SeqCst), 2);

    // A cache built before the install stays process-local.
    assert_eq!(
        early::metrics().fleet.map(|f| f.link),
        Some(FleetLink::NotInstalled)
    );
}
