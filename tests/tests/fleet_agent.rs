//! agent-cache with an installed fleet, against a real `redis-server`: global resource
//! invalidations reach every process (their global entries and the session-scoped entries of
//! their live sessions), an invalidator returns once Redis acknowledged its invalidation (or
//! queued it), and a process that loses the fleet drops its tool results. The "other process"
//! is a second fleet connection on the resource channel. One test, in steps, because a fleet
//! is installed once per process. Across real processes: `fleet_processes.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use agent_cache::{AgentCacheSession, agent_cache, agent_invalidator};
use cache_core::fleet::{Delivered, FleetChannel, FleetReceiver, Message};
use tests::fleet::{connect, until};
use tests::redis_server::RedisServer;

static CART_LOADS: AtomicU64 = AtomicU64::new(0);
static TICKET_LOADS: AtomicU64 = AtomicU64::new(0);

#[agent_cache(resource = "cart:{user}")]
async fn get_cart(user: &str) -> String {
    CART_LOADS.fetch_add(1, Ordering::SeqCst);
    format!("cart of {user}")
}

#[agent_cache(resource = "cart:{user}", scope = "session")]
async fn get_ticket(user: &str) -> String {
    TICKET_LOADS.fetch_add(1, Ordering::SeqCst);
    format!("ticket of {user}")
}

#[agent_invalidator(resource = "cart:{user}")]
async fn add_to_cart(user: &str, item: &str) -> Result<(), String> {
    let _ = (user, item);
    Ok(())
}

#[agent_invalidator(resource = "cart:{user}", scope = "session")]
async fn note(user: &str) -> Result<(), String> {
    let _ = user;
    Ok(())
}

/// What another process hears on the resource channel.
#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl FleetReceiver for Heard {
    fn invalidate(&self, key: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(key).into_owned());
    }
    fn clear(&self) {}
    fn flush(&self) {}
}

const SOON: Duration = Duration::from_secs(2);
const RESOURCES: &str = "agent-cache:resources";

fn loads() -> u64 {
    CART_LOADS.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_invalidations_cross_processes_through_the_installed_fleet() {
    let mut redis = RedisServer::start();
    let this = connect(&redis.url()).await;
    this.install();
    let other = connect(&redis.url()).await;
    let theirs = other.cache(RESOURCES);
    let heard = Arc::new(Heard::default());
    let receiver: Arc<dyn FleetReceiver> = heard.clone();
    theirs.subscribe(Arc::downgrade(&receiver) as Weak<dyn FleetReceiver>);

    // Another process's invalidation of one user's cart: only that cart loads again.
    get_cart("u1").await;
    get_cart("u2").await;
    assert_eq!(loads(), 2);
    let remote_before = agent_cache::metrics().remote_invalidations;
    assert_eq!(
        theirs.publish(Message::Invalidate(b"cart:u1")).await,
        Delivered::Acknowledged
    );
    assert!(
        until(SOON, || agent_cache::metrics().remote_invalidations
            > remote_before)
        .await
    );
    get_cart("u1").await;
    get_cart("u2").await;
    assert_eq!(loads(), 3, "u1 reloaded, u2 still a hit");

    // Hierarchical, as locally: `cart` reaches every cart.
    theirs.publish(Message::Invalidate(b"cart")).await;
    assert!(
        until(SOON, || agent_cache::metrics().remote_invalidations
            > remote_before + 1)
        .await
    );
    get_cart("u1").await;
    get_cart("u2").await;
    assert_eq!(loads(), 5);

    // A remote global invalidation reaches session-scoped entries of a live session.
    let session = AgentCacheSession::builder().loop_detection(false).build();
    session
        .run(async {
            get_ticket("u1").await;
            get_ticket("u1").await;
            assert_eq!(TICKET_LOADS.load(Ordering::SeqCst), 1);
            theirs.publish(Message::Invalidate(b"cart:u1")).await;
            assert!(
                until(SOON, || agent_cache::metrics().remote_invalidations
                    >= remote_before + 3)
                .await
            );
            get_ticket("u1").await;
            assert_eq!(TICKET_LOADS.load(Ordering::SeqCst), 2);
        })
        .await
        .unwrap();

    // This process's invalidator reaches the other process, and returns only once Redis
    // acknowledged it; a session-scope invalidator publishes nothing.
    add_to_cart("u7", "laptop").await.unwrap();
    let status = this.status();
    assert_eq!(
        status.acknowledged, status.issued,
        "returned before the acknowledgement"
    );
    assert!(
        until(SOON, || heard
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|r| r == "cart:u7"))
        .await
    );
    let issued = this.status().issued;
    session
        .run(async { note("u7").await.unwrap() })
        .await
        .unwrap();
    assert_eq!(this.status().issued, issued);

    // The fleet's Redis dies: tool results cached so far are dropped (they may miss
    // invalidations), reads still work, and an invalidator returns at once, queued.
    get_cart("u3").await;
    let before = loads();
    redis.kill();
    assert!(until(SOON, || !this.status().is_connected()).await);
    get_cart("u3").await;
    assert_eq!(loads(), before + 1, "flushed on losing the fleet");
    let started = Instant::now();
    add_to_cart("u3", "phone").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "an invalidator never waits on a dead Redis"
    );
    assert!(this.status().queued >= 1);
    // Stored while degraded: at most max_staleness (500 ms here).
    get_cart("u4").await;
    let stored = loads();
    tokio::time::sleep(Duration::from_millis(600)).await;
    get_cart("u4").await;
    assert_eq!(
        loads(),
        stored + 1,
        "capped at max_staleness while degraded"
    );

    // Back: the queued invalidation goes out, and the other process hears it.
    redis.restart();
    assert!(until(Duration::from_secs(5), || this.status().is_connected()).await);
    let other_back = until(Duration::from_secs(5), || other.status().is_connected()).await;
    assert!(other_back);
    assert!(until(Duration::from_secs(5), || this.status().queued == 0).await);
}
