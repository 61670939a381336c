//! Warm restart on both engines: `snapshot` then `restore` keeps every live entry with the
//! time it had left (less the time between), drops what expired, and refuses a snapshot of
//! another type, version or format (or a damaged one) with an error that says so, leaving
//! the cache as it was. The attributes' `f::snapshot` / `f::restore` do the same.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::{AsyncCache, Engine, SnapshotError, async_ttl};

const ENGINES: [Engine; 2] = [Engine::QuickCache, Engine::Moka];

fn users(engine: Engine) -> cache_core::AsyncCacheBuilder<u64, String> {
    AsyncCache::builder().maxsize(10_000).engine(engine)
}

#[test]
fn a_restored_cache_holds_every_live_entry_with_the_time_it_had_left() {
    for engine in ENGINES {
        let cache = users(engine).build();
        for id in 0..1_000 {
            cache.insert(id, format!("user-{id}"));
        }
        cache.insert_with_ttl(5_000, "brief".into(), Some(Duration::from_millis(50)));
        cache.insert_with_ttl(5_001, "an hour".into(), Some(Duration::from_secs(3_600)));
        cache.insert_with_ttl(5_002, "two seconds".into(), Some(Duration::from_secs(2)));
        let mut file = Vec::new();
        assert_eq!(cache.snapshot(&mut file).unwrap(), 1_003, "{engine:?}");

        // The service is down for a while: the brief entry expires meanwhile.
        std::thread::sleep(Duration::from_millis(700));
        let restarted = users(engine).restore(file.as_slice()).unwrap();
        let m = restarted.metrics();
        assert_eq!(m.size, 1_002, "{engine:?}: the expired entry came back");
        assert_eq!(restarted.get(&5_000), None, "{engine:?}");
        for id in (0..1_000).step_by(97) {
            assert_eq!(restarted.get(&id), Some(format!("user-{id}")), "{engine:?}");
        }
        let left = |key| {
            restarted
                .iter()
                .with_time_left()
                .find(|(k, _, _)| *k == key)
                .and_then(|(_, _, left)| left)
        };
        assert_eq!(
            left(0),
            None,
            "{engine:?}: an entry without a TTL gained one"
        );
        let hour = left(5_001).unwrap();
        assert!(hour > Duration::from_secs(3_500) && hour <= Duration::from_secs(3_600));
        // The downtime counts against the TTL: two seconds less ~0.7 s.
        let two = left(5_002).unwrap();
        assert!(
            two <= Duration::from_millis(1_300),
            "{engine:?}: {two:?} left"
        );
        // And it still expires on time after the restart.
        std::thread::sleep(two + Duration::from_millis(300));
        assert_eq!(restarted.get(&5_002), None, "{engine:?}");
    }
}

#[test]
fn a_snapshot_restores_into_either_engine_and_keeps_live_values_already_there() {
    let cache = users(Engine::QuickCache).build();
    cache.insert(1, "old".into());
    cache.insert(2, "two".into());
    let mut file = Vec::new();
    cache.snapshot(&mut file).unwrap();
    let moka = users(Engine::Moka).build();
    moka.insert(1, "newer".into());
    let report = moka.restore_from(file.as_slice()).unwrap();
    assert_eq!((report.restored, report.skipped, report.expired), (1, 1, 0));
    assert_eq!(moka.get(&1).as_deref(), Some("newer"));
    assert_eq!(moka.get(&2).as_deref(), Some("two"));
}

#[test]
fn a_snapshot_of_another_cache_or_a_damaged_one_is_refused_and_restores_nothing() {
    for engine in ENGINES {
        let cache = users(engine).snapshot_version(3).build();
        for id in 0..100 {
            cache.insert(id, format!("user-{id}"));
        }
        let mut file = Vec::new();
        cache.snapshot(&mut file).unwrap();

        let target = users(engine).snapshot_version(3).build();
        target.insert(7, "mine".into());
        let unchanged = |target: &AsyncCache<u64, String>| {
            let m = target.metrics();
            assert_eq!(m.size, 1, "{engine:?}: a refused snapshot stored entries");
            assert_eq!(target.get(&7).as_deref(), Some("mine"));
        };

        let other_type = AsyncCache::<String, String>::builder()
            .snapshot_version(3)
            .engine(engine)
            .restore(file.as_slice());
        let error = other_type.unwrap_err();
        assert!(matches!(error, SnapshotError::Type { .. }), "{error:?}");
        assert!(
            error.to_string().contains("u64 -> alloc::string::String"),
            "{error}"
        );

        let other_version = users(engine).snapshot_version(4).restore(file.as_slice());
        let error = other_version.unwrap_err();
        assert!(
            matches!(
                error,
                SnapshotError::Version {
                    expected: 4,
                    found: 3
                }
            ),
            "{error:?}"
        );

        let error = target.restore_from(&b"{\"users\": []}"[..]).unwrap_err();
        assert!(matches!(error, SnapshotError::NotASnapshot), "{error:?}");
        unchanged(&target);

        // Cut in the middle of its entries: nothing of it is stored.
        let truncated = &file[..file.len() / 2];
        let error = target.restore_from(truncated).unwrap_err();
        assert!(matches!(error, SnapshotError::Codec(_)), "{error:?}");
        assert!(error.to_string().contains("truncated"), "{error}");
        unchanged(&target);

        // A flipped byte in the header's format field.
        let mut damaged = file.clone();
        damaged[b"async-cache snapshot\n".len() + 4] = 9;
        let error = target.restore_from(damaged.as_slice()).unwrap_err();
        assert!(
            matches!(
                error,
                SnapshotError::Format {
                    found: 9,
                    supported: 1
                }
            ),
            "{error:?}"
        );
        unchanged(&target);

        let report = target.restore_from(file.as_slice()).unwrap();
        assert_eq!((report.restored, report.skipped), (99, 1), "{engine:?}");
    }
}

static PROFILE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[async_ttl(time_to_live = 3600, maxsize = 1000, snapshot = true)]
async fn profile(id: u64, region: &str) -> Result<String, std::io::Error> {
    PROFILE_LOADS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("{region}/user-{id}"))
}

#[tokio::test]
async fn the_attributes_snapshot_and_restore_helpers_warm_a_cached_function() {
    for id in 0..50 {
        profile(id, "eu").await.unwrap();
    }
    assert_eq!(PROFILE_LOADS.load(Ordering::SeqCst), 50);
    let mut file = Vec::new();
    assert_eq!(profile::snapshot(&mut file).unwrap(), 50);

    profile::clear(); // as a fresh process would start
    assert_eq!(profile::metrics().size, 0);
    let report = profile::restore(file.as_slice()).unwrap();
    assert_eq!(report.restored, 50);
    for id in 0..50 {
        assert_eq!(profile(id, "eu").await.unwrap(), format!("eu/user-{id}"));
    }
    assert_eq!(
        PROFILE_LOADS.load(Ordering::SeqCst),
        50,
        "a restored entry was loaded again"
    );
    assert_eq!(profile::metrics().hits, 50);

    // A snapshot of another cache is refused by the helper too.
    let other: AsyncCache<u64, String> = AsyncCache::builder().build();
    other.insert(1, "x".into());
    let mut wrong = Vec::new();
    other.snapshot(&mut wrong).unwrap();
    let error = profile::restore(wrong.as_slice()).unwrap_err();
    assert!(matches!(error, SnapshotError::Type { .. }), "{error:?}");
}
