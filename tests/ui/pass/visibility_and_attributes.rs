#![deny(warnings)]

mod shop {
    use cache_core::async_lru;

    /// A product's price, in cents.
    #[async_lru(maxsize = 10)]
    #[inline]
    #[must_use = "a price is for reading"]
    pub(crate) async fn price(sku: u64) -> u64 {
        sku * 100
    }

    #[deprecated = "use price"]
    #[async_lru]
    pub async fn old_price(sku: u64) -> u64 {
        sku
    }

    pub mod inner {
        use cache_core::async_lru;

        #[async_lru]
        pub(super) async fn secret(n: u64) -> u64 {
            n
        }

        pub(crate) async fn reveal() -> u64 {
            secret(1).await + secret::metrics().loads
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(shop::price(2).await, 200);
    assert_eq!(shop::price::metrics().loads, 1);
    shop::price::invalidate(2);
    assert_eq!(shop::price::refresh(2).await, 200);
    #[allow(deprecated)]
    let old = shop::old_price(1).await;
    assert_eq!(old, 1);
    assert_eq!(shop::inner::reveal().await, 2);
}
