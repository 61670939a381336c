//! The link task: one connection to Redis per process, kept alive, listened to and watched.
//!
//! It runs on a thread of its own with a current-thread tokio runtime, so it lives as long as
//! the fleet whatever runtimes the caches are used from (a cache in a `static` outlives every
//! `#[tokio::test]` runtime). Each session:
//!
//! 1. connects with RESP3, so that invalidations arrive as push messages on the same
//!    connection, and turns on `CLIENT TRACKING ON BCAST PREFIX <ns>:i: NOLOOP` (so this
//!    process's own writes, already applied locally, are not echoed back);
//! 2. flushes every fleet cache (invalidations sent while it was not listening are lost:
//!    Redis keeps no backlog) and only then lifts the staleness cap;
//! 3. sends the queued invalidations, oldest first, in pipelines, and sends a PING whenever
//!    the link has been quiet for a heartbeat: a PING unanswered within a heartbeat means
//!    the link is half-open (a peer that vanished without a FIN), which only a missing answer
//!    can reveal.
//!
//! Any error ends the session: the fleet degrades (cap, then flush) and the task reconnects
//! with exponential backoff.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value};
use tokio::sync::{Notify, oneshot};

use crate::outbox::{Kind, Versions};
use crate::shared::Shared;

/// The most messages sent in one pipeline.
const MAX_BATCH: usize = 512;

/// Starts the link task on its own thread. `first` is told when the first attempt to
/// connect has succeeded or failed.
pub(crate) fn spawn(shared: Arc<Shared>, client: Client, first: oneshot::Sender<()>) {
    let thread = std::thread::Builder::new()
        .name(format!("cache-redis:{}", shared.config.namespace))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    shared.set_degraded(format!("cannot start the fleet's runtime: {error}"));
                    return;
                }
            };
            runtime.block_on(run(&shared, &client, first));
        });
    if let Err(error) = thread {
        tracing::error!(target: "cache_redis", %error, "cannot start the fleet's thread");
    }
}

/// Why a session ended.
enum Ended {
    Shutdown,
    Lost(String),
}

async fn run(shared: &Arc<Shared>, client: &Client, first: oneshot::Sender<()>) {
    let mut first = Some(first);
    let mut failures: u32 = 0;
    loop {
        match session(shared, client, &mut first).await {
            Ended::Shutdown => return,
            Ended::Lost(reason) => {
                shared.set_degraded(reason);
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
            }
        }
        if shared.is_shut_down() {
            return;
        }
        // Backoff only after attempts that did not get connected.
        failures = if shared.is_connected() {
            0
        } else {
            failures.saturating_add(1)
        };
        let wait = backoff(failures, shared.config.max_backoff);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.shutdown_signal.notified() => return,
        }
    }
}

/// 20 ms, doubling per failed attempt, at most `max`.
fn backoff(failures: u32, max: Duration) -> Duration {
    let millis = 20u64.saturating_mul(1 << failures.min(16));
    Duration::from_millis(millis).min(max)
}

async fn session(
    shared: &Arc<Shared>,
    client: &Client,
    first: &mut Option<oneshot::Sender<()>>,
) -> Ended {
    let lost = Arc::new(Notify::new());
    let config = {
        let (shared, lost) = (Arc::clone(shared), Arc::clone(&lost));
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(shared.config.connect_timeout))
            .set_response_timeout(Some(shared.config.heartbeat))
            .set_push_sender(move |push: PushInfo| {
                on_push(&shared, &lost, push);
                Ok::<(), Infallible>(())
            })
    };
    let connecting = client.get_multiplexed_async_connection_with_config(&config);
    let mut connection = tokio::select! {
        connected = tokio::time::timeout(shared.config.connect_timeout, connecting) => {
            match connected {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => return Ended::Lost(format!("cannot connect: {error}")),
                Err(_) => return Ended::Lost("cannot connect: timed out".into()),
            }
        }
        () = shared.shutdown_signal.notified() => return Ended::Shutdown,
    };
    let mut tracking = redis::cmd("CLIENT");
    tracking
        .arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .arg("PREFIX")
        .arg(shared.keys.tracked_prefix())
        .arg("NOLOOP");
    let tracking = tracking.query_async::<()>(&mut connection);
    match tokio::time::timeout(shared.config.connect_timeout, tracking).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Ended::Lost(format!("cannot turn on tracking: {error}")),
        Err(_) => return Ended::Lost("cannot turn on tracking: timed out".into()),
    }
    // The shared tier's wake-ups, and its scripts (pipelined scripts are not loaded on demand).
    let prepared = async {
        connection.subscribe(shared.keys.filled()).await?;
        for script in shared.scripts.all() {
            script.prepare_invoke().load_async(&mut connection).await?;
        }
        Ok::<(), redis::RedisError>(())
    };
    match tokio::time::timeout(shared.config.connect_timeout, prepared).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Ended::Lost(format!("cannot prepare the shared tier: {error}")),
        Err(_) => return Ended::Lost("cannot prepare the shared tier: timed out".into()),
    }
    shared.set_connected();
    if let Some(first) = first.take() {
        let _ = first.send(());
    }
    serve(shared, &mut connection, &lost).await
}

/// Sends what is queued and watches the link until it fails or the fleet shuts down.
async fn serve(shared: &Shared, connection: &mut MultiplexedConnection, lost: &Notify) -> Ended {
    let heartbeat = shared.config.heartbeat;
    loop {
        if shared.outbox.lock().has_queued() {
            if let Err(reason) = send_batch(shared, connection).await {
                return Ended::Lost(reason);
            }
            continue;
        }
        tokio::select! {
            biased;
            () = shared.shutdown_signal.notified() => return Ended::Shutdown,
            () = lost.notified() => return Ended::Lost("connection closed".into()),
            () = shared.outbox_ready.notified() => {}
            () = tokio::time::sleep(heartbeat) => {
                let ping = redis::cmd("PING");
                match tokio::time::timeout(heartbeat, ping.query_async::<()>(connection)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Ended::Lost(format!("PING failed: {error}")),
                    Err(_) => {
                        return Ended::Lost(format!(
                            "PING unanswered for {} ms: the link is half-open",
                            heartbeat.as_millis()
                        ));
                    }
                }
            }
        }
    }
}

/// Sends the oldest queued messages in one pipeline; on success they are acknowledged.
async fn send_batch(shared: &Shared, connection: &mut MultiplexedConnection) -> Result<(), String> {
    let pipeline = {
        let mut outbox = shared.outbox.lock();
        // One transaction: each marker is written then deleted (see `keys`), so Redis keeps
        // nothing and tells every other process once.
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        let version_ttl = u64::try_from(shared.config.version_ttl.as_millis()).unwrap_or(u64::MAX);
        for message in outbox.start_batch(MAX_BATCH) {
            let marker = match &message.kind {
                Kind::Invalidate(key) => shared.keys.invalidation(&message.channel, key),
                Kind::Clear => shared.keys.clear(&message.channel),
            };
            pipeline.cmd("SET").arg(&marker).arg(1).ignore();
            pipeline.cmd("DEL").arg(&marker).ignore();
            match (message.versions, &message.kind) {
                (Versions::None, _) => {}
                // A shared cache's value goes too, and its version moves, so that a load that
                // began before this can no longer store (see `tier`).
                (Versions::Key, Kind::Invalidate(key)) => {
                    let keys = shared.keys.shared(&message.channel, key);
                    pipeline.cmd("INCR").arg(&keys.version).ignore();
                    pipeline
                        .cmd("PEXPIRE")
                        .arg(&keys.version)
                        .arg(version_ttl.max(1))
                        .ignore();
                    pipeline.cmd("DEL").arg(&keys.value).ignore();
                }
                (Versions::Key, Kind::Clear) => {
                    pipeline
                        .cmd("INCR")
                        .arg(shared.keys.epoch(&message.channel))
                        .ignore();
                }
                // A resource's versions, as agent-cache's registry moves them (see `tier`).
                (Versions::Resource, Kind::Invalidate(path)) => {
                    for key in shared.keys.resource_bumps(path) {
                        pipeline.cmd("INCR").arg(key).ignore();
                    }
                }
                (Versions::Resource, Kind::Clear) => {
                    pipeline
                        .cmd("INCR")
                        .arg(shared.keys.resource_epoch())
                        .ignore();
                }
            }
        }
        pipeline
    };
    let sent = tokio::time::timeout(
        shared.config.heartbeat,
        pipeline.query_async::<()>(connection),
    )
    .await;
    let mut outbox = shared.outbox.lock();
    match sent {
        Ok(Ok(())) => {
            outbox.sent();
            let acknowledged = outbox.acknowledged();
            drop(outbox);
            shared.publish_progress(acknowledged);
            Ok(())
        }
        Ok(Err(error)) => {
            outbox.failed();
            Err(format!("cannot send invalidations: {error}"))
        }
        Err(_) => {
            outbox.failed();
            Err(format!(
                "invalidations unanswered for {} ms: the link is half-open",
                shared.config.heartbeat.as_millis()
            ))
        }
    }
}

/// A push message from Redis, on the connection's own task: applied at once.
fn on_push(shared: &Shared, lost: &Notify, push: PushInfo) {
    match push.kind {
        PushKind::Invalidate => match push.data.first() {
            Some(Value::Array(keys) | Value::Set(keys)) => {
                for key in keys {
                    if let Value::BulkString(key) = key {
                        shared.apply(key);
                    }
                }
            }
            // A NULL invalidation: the database was flushed, every key is gone.
            Some(Value::Nil) => shared.flush_all(),
            _ => {}
        },
        // A shared value stored or released: wake the loads of this process waiting for it.
        PushKind::Message => {
            if let [_channel, Value::BulkString(key), ..] = push.data.as_slice() {
                shared.waiters.wake(key);
            }
        }
        PushKind::Disconnection => lost.notify_one(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_20_ms_up_to_its_bound() {
        let max = Duration::from_secs(1);
        let waits: Vec<u64> = (0..8).map(|n| backoff(n, max).as_millis() as u64).collect();
        assert_eq!(waits, [20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}
