use cache_core::async_ttl;

#[derive(Clone, Hash, PartialEq, Eq)]
struct Tenant(u64);

// A fleet cache sends its keys to other processes: `Tenant` has no serde impls.
#[async_ttl(time_to_live = 60, fleet = "users")]
async fn user(tenant: Tenant, id: u64) -> u64 {
    tenant.0 + id
}

fn main() {}
