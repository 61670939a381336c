use cache_core::async_ttl;

// Independent mistakes are all reported at once, each at its own tokens.
#[async_ttl(maxsize = "big", skip_args = true, time_to_live = "1m", result = 1, detached = yes)]
async fn user(id: u64) -> u64 {
    id
}

fn main() {}
