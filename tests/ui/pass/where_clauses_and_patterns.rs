use cache_core::async_lru;

struct Db;

// A skipped parameter may be any pattern; `mut` bindings are kept.
#[async_lru(skip_args = 1)]
async fn lookup(_: &Db, mut id: u64) -> u64 {
    id += 1;
    id
}

#[async_lru(key = id)]
async fn described<D>(describe: D, id: u64) -> String
where
    D: Fn(u64) -> String + Send,
{
    describe(id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(lookup(&Db, 1).await, 2);
    assert_eq!(lookup(&Db, 1).await, 2);
    assert_eq!(lookup::metrics().hits, 1);
    assert_eq!(lookup::refresh(&Db, 1).await, 2);
    assert_eq!(described(|id| format!("#{id}"), 4).await, "#4");
}
