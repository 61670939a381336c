//! The expansion is clean under the strictest lint settings a user may have: this file is
//! compiled with `deny(warnings)` by `cargo test` and with `clippy::pedantic` by CI's clippy
//! run, and every signature shape below must pass both.
#![deny(warnings, missing_docs, clippy::pedantic)]

use std::sync::Arc;

use cache_core::{async_lru, async_ttl};

/// A user record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct User {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
}

/// A backend error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbError;

/// Owned arguments (the detached form).
#[async_lru(maxsize = 16)]
pub async fn user(id: u64) -> User {
    User {
        id,
        name: format!("user-{id}"),
    }
}

/// Borrowed arguments (the inline form) and a float TTL.
#[async_ttl(time_to_live = 0.5, maxsize = 16)]
pub async fn search(query: &str, limit: usize) -> Vec<String> {
    (0..limit).map(|i| format!("{query}-{i}")).collect()
}

/// A `Result` with an early return and `?`.
///
/// # Errors
///
/// `DbError` for id 0.
#[async_lru]
pub async fn checked(id: u64) -> Result<u64, DbError> {
    if id == 0 {
        return Err(DbError);
    }
    let value: Result<u64, DbError> = Ok(id * 2);
    value
}

/// An `io::Result` alias.
///
/// # Errors
///
/// Never.
#[async_ttl(time_to_live = 60, result = true)]
pub async fn io_alias(path: String) -> std::io::Result<usize> {
    Ok(path.len())
}

/// A custom key over a generic argument.
#[async_lru(key = item.to_string())]
pub async fn render<T: std::fmt::Display + Send>(item: T) -> String {
    format!("<{item}>")
}

/// No arguments.
#[async_lru]
pub async fn config() -> Arc<str> {
    Arc::from("config")
}

/// A repository.
pub struct Repo;

impl Repo {
    /// A method sharing one cache across instances.
    ///
    /// # Errors
    ///
    /// Never.
    #[async_ttl(time_to_live = 30, skip_args = 1)]
    pub async fn order(&self, id: u64) -> Result<String, DbError> {
        Ok(format!("order-{id}"))
    }
}

#[tokio::test]
async fn every_shape_runs_and_caches() {
    assert_eq!(user(1).await.name, "user-1");
    assert_eq!(user(1).await.id, 1);
    assert_eq!(user::metrics().hits, 1);
    assert_eq!(search("q", 2).await.len(), 2);
    assert_eq!(checked(0).await, Err(DbError));
    assert_eq!(checked(2).await, Ok(4));
    assert_eq!(io_alias("abc".into()).await.unwrap(), 3);
    assert_eq!(render(5).await, "<5>");
    assert_eq!(render("5").await, "<5>");
    assert_eq!(render::metrics().loads, 1);
    assert_eq!(&*config().await, "config");
    assert_eq!(Repo.order(3).await, Ok("order-3".to_string()));
    Repo::order_invalidate(3);
    user::invalidate(1);
    search::clear();
}

/// `snapshot = true`: the generated `snapshot` and `restore` helpers pass the same lints.
#[async_ttl(time_to_live = 60, maxsize = 16, snapshot = true)]
pub async fn snapshot_profile(id: u64, region: &str) -> Result<String, DbError> {
    Ok(format!("{region}/{id}"))
}

/// A method with `snapshot = true`, keyed by its receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shelf(pub u64);

impl Shelf {
    /// Its stock.
    #[async_lru(snapshot = true)]
    pub async fn stock(&self) -> u64 {
        self.0
    }
}

#[tokio::test]
async fn snapshot_helpers_pass_the_lints_and_run() {
    assert_eq!(snapshot_profile(1, "eu").await, Ok("eu/1".to_owned()));
    assert_eq!(Shelf(3).stock().await, 3);
    let mut file = Vec::new();
    assert_eq!(snapshot_profile::snapshot(&mut file).unwrap(), 1);
    assert_eq!(Shelf::stock_snapshot(&mut Vec::new()).unwrap(), 1);
    snapshot_profile::clear();
    assert_eq!(
        snapshot_profile::restore(file.as_slice()).unwrap().restored,
        1
    );
}
