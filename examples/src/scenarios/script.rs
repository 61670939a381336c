//! Scripts of tool calls typed by a user, one call a line, run through the scenarios' tools
//! in one session: the dashboard's custom sequences.
//!
//! ```text
//! # a comment
//! get_cart u1
//! add_to_cart u1 laptop
//! add_to_cart(u1, "gaming mouse")
//! check_stock SKU-1
//! ```

use std::fmt::{self, Debug};
use std::future::Future;
use std::sync::atomic::Ordering;

use agent_cache::AgentCacheSession;
use serde::Serialize;

use super::{
    BACKEND_CALLS, Report, SessionLimits, Timeline, add_to_cart, charge_payment, check_stock,
    checkout, fetch_page, get_cart, get_product, get_ticket, search_web, update_stock,
    update_ticket,
};

/// The most calls one script may make.
pub const MAX_SCRIPT_CALLS: usize = 200;

/// The longest argument a script may pass, in bytes.
const MAX_ARGUMENT_LEN: usize = 200;

/// A tool that scripts can call, as described to users.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ToolSpec {
    /// Its name in a script.
    pub name: &'static str,
    /// Its parameters, in order.
    pub params: &'static [&'static str],
    /// `"read"` (`#[agent_cache]`) or `"write"` (`#[agent_invalidator]`).
    pub kind: &'static str,
    /// What it does to the cache.
    pub about: &'static str,
}

/// Every tool a script can call.
pub const TOOLS: [ToolSpec; 11] = [
    tool(
        "get_cart",
        &["user_id"],
        "read",
        "resource cart, global scope, ttl 120 s",
    ),
    tool(
        "get_product",
        &["product_id"],
        "read",
        "resource product, global scope",
    ),
    tool(
        "add_to_cart",
        &["user_id", "product_id"],
        "write",
        "invalidates cart",
    ),
    tool("checkout", &["user_id"], "write", "invalidates cart"),
    tool(
        "get_ticket",
        &["ticket_id"],
        "read",
        "resource ticket, session scope",
    ),
    tool(
        "update_ticket",
        &["ticket_id", "status"],
        "write",
        "invalidates ticket in the session",
    ),
    tool(
        "search_web",
        &["query"],
        "read",
        "resource search, global scope",
    ),
    tool(
        "fetch_page",
        &["url"],
        "read",
        "resource page, global scope",
    ),
    tool(
        "check_stock",
        &["item_id"],
        "read",
        "resource stock, global scope",
    ),
    tool(
        "update_stock",
        &["item_id", "delta"],
        "write",
        "invalidates stock; delta is a whole number",
    ),
    tool(
        "charge_payment",
        &["order_id", "amount"],
        "write",
        "always fails: the gateway times out",
    ),
];

const fn tool(
    name: &'static str,
    params: &'static [&'static str],
    kind: &'static str,
    about: &'static str,
) -> ToolSpec {
    ToolSpec {
        name,
        params,
        kind,
        about,
    }
}

/// One call of a script, with its arguments parsed.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // the fields are the tools' parameters, listed in `TOOLS`
pub enum ToolCall {
    GetCart { user_id: String },
    GetProduct { product_id: String },
    AddToCart { user_id: String, product_id: String },
    Checkout { user_id: String },
    GetTicket { ticket_id: String },
    UpdateTicket { ticket_id: String, status: String },
    SearchWeb { query: String },
    FetchPage { url: String },
    CheckStock { item_id: String },
    UpdateStock { item_id: String, delta: i64 },
    ChargePayment { order_id: String, amount: f64 },
}

/// Why a script could not be parsed: the line (from 1) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// The offending line, counted from 1 (0 for the script as a whole).
    pub line: usize,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ScriptError {}

/// Parses a script: one call a line, as `tool arg arg` (double quotes around an argument
/// with spaces) or `tool(arg, arg)`. Blank lines and lines starting with `#` are skipped.
pub fn parse_script(script: &str) -> Result<Vec<ToolCall>, ScriptError> {
    let mut calls = Vec::new();
    for (index, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |message: String| ScriptError {
            line: index + 1,
            message,
        };
        if calls.len() == MAX_SCRIPT_CALLS {
            return Err(error(format!(
                "a script may make at most {MAX_SCRIPT_CALLS} calls"
            )));
        }
        let (name, args) = split_call(line).map_err(error)?;
        calls.push(ToolCall::new(&name, args).map_err(error)?);
    }
    if calls.is_empty() {
        return Err(ScriptError {
            line: 0,
            message: "the script has no calls: write one per line, e.g. `get_cart u1`".into(),
        });
    }
    Ok(calls)
}

/// Splits `tool(a, b)` or `tool a "b c"` into the tool's name and its arguments.
fn split_call(line: &str) -> Result<(String, Vec<String>), String> {
    if let Some((name, rest)) = line.split_once('(') {
        let inner = rest
            .trim_end()
            .strip_suffix(')')
            .ok_or_else(|| format!("missing `)` at the end of {line:?}"))?;
        let args = if inner.trim().is_empty() {
            Vec::new()
        } else {
            inner.split(',').map(|arg| unquote(arg.trim())).collect()
        };
        return Ok((name.trim().to_owned(), args));
    }
    let mut words = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[start..];
        let (word, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| format!("unclosed quote in {line:?}"))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        words.push(word.to_owned());
        rest = after;
    }
    let name = words.remove(0);
    Ok((name, words))
}

fn unquote(arg: &str) -> String {
    arg.strip_prefix('"')
        .and_then(|arg| arg.strip_suffix('"'))
        .unwrap_or(arg)
        .to_owned()
}

impl ToolCall {
    fn new(name: &str, args: Vec<String>) -> Result<Self, String> {
        let spec = TOOLS.iter().find(|tool| tool.name == name).ok_or_else(|| {
            let known: Vec<&str> = TOOLS.iter().map(|tool| tool.name).collect();
            format!("unknown tool {name:?}; the tools are {}", known.join(", "))
        })?;
        if args.len() != spec.params.len() {
            return Err(format!(
                "{name} takes {} argument(s) ({}), got {}",
                spec.params.len(),
                spec.params.join(", "),
                args.len()
            ));
        }
        if let Some(arg) = args.iter().find(|arg| arg.len() > MAX_ARGUMENT_LEN) {
            return Err(format!(
                "{name}: an argument is longer than {MAX_ARGUMENT_LEN} bytes ({} bytes)",
                arg.len()
            ));
        }
        let mut args = args.into_iter();
        let mut next = || args.next().unwrap_or_default();
        Ok(match name {
            "get_cart" => ToolCall::GetCart { user_id: next() },
            "get_product" => ToolCall::GetProduct { product_id: next() },
            "add_to_cart" => ToolCall::AddToCart {
                user_id: next(),
                product_id: next(),
            },
            "checkout" => ToolCall::Checkout { user_id: next() },
            "get_ticket" => ToolCall::GetTicket { ticket_id: next() },
            "update_ticket" => ToolCall::UpdateTicket {
                ticket_id: next(),
                status: next(),
            },
            "search_web" => ToolCall::SearchWeb { query: next() },
            "fetch_page" => ToolCall::FetchPage { url: next() },
            "check_stock" => ToolCall::CheckStock { item_id: next() },
            "update_stock" => {
                let item_id = next();
                let delta = next();
                let delta = delta.parse().map_err(|_| {
                    format!("update_stock: delta must be a whole number such as -1, got {delta:?}")
                })?;
                ToolCall::UpdateStock { item_id, delta }
            }
            "charge_payment" => {
                let order_id = next();
                let amount = next();
                let amount = amount
                    .parse()
                    .ok()
                    .filter(|amount: &f64| amount.is_finite())
                    .ok_or_else(|| {
                        format!(
                            "charge_payment: amount must be a number such as 99.99, got {amount:?}"
                        )
                    })?;
                ToolCall::ChargePayment { order_id, amount }
            }
            _ => unreachable!("every tool in TOOLS has an arm"),
        })
    }

    /// Runs the call in the timeline's session, recording what happened.
    async fn run_in(&self, t: &Timeline) {
        let call = self.to_string();
        match self {
            ToolCall::GetCart { user_id } => record(t, call, get_cart(user_id)).await,
            ToolCall::GetProduct { product_id } => record(t, call, get_product(product_id)).await,
            ToolCall::AddToCart {
                user_id,
                product_id,
            } => record(t, call, add_to_cart(user_id, product_id)).await,
            ToolCall::Checkout { user_id } => record(t, call, checkout(user_id)).await,
            ToolCall::GetTicket { ticket_id } => record(t, call, get_ticket(ticket_id)).await,
            ToolCall::UpdateTicket { ticket_id, status } => {
                record(t, call, update_ticket(ticket_id, status)).await;
            }
            ToolCall::SearchWeb { query } => record(t, call, search_web(query)).await,
            ToolCall::FetchPage { url } => record(t, call, fetch_page(url)).await,
            ToolCall::CheckStock { item_id } => record(t, call, check_stock(item_id)).await,
            ToolCall::UpdateStock { item_id, delta } => {
                record(t, call, update_stock(item_id, *delta)).await;
            }
            ToolCall::ChargePayment { order_id, amount } => {
                record(t, call, charge_payment(order_id, *amount)).await;
            }
        }
    }
}

/// Runs one tool call through the timeline. A script goes on after a failed call (the
/// failure is in the timeline), as an agent retrying it would.
async fn record<T: Debug>(t: &Timeline, call: String, tool: impl Future<Output = T>) {
    let _outcome = t.call(call, tool).await;
}

/// Shown as the scenarios show their calls: `add_to_cart(u1, laptop)`.
impl fmt::Display for ToolCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolCall::GetCart { user_id } => write!(f, "get_cart({user_id})"),
            ToolCall::GetProduct { product_id } => write!(f, "get_product({product_id})"),
            ToolCall::AddToCart {
                user_id,
                product_id,
            } => write!(f, "add_to_cart({user_id}, {product_id})"),
            ToolCall::Checkout { user_id } => write!(f, "checkout({user_id})"),
            ToolCall::GetTicket { ticket_id } => write!(f, "get_ticket({ticket_id})"),
            ToolCall::UpdateTicket { ticket_id, status } => {
                write!(f, "update_ticket({ticket_id}, {status})")
            }
            ToolCall::SearchWeb { query } => write!(f, "search_web({query})"),
            ToolCall::FetchPage { url } => write!(f, "fetch_page({url})"),
            ToolCall::CheckStock { item_id } => write!(f, "check_stock({item_id})"),
            ToolCall::UpdateStock { item_id, delta } => {
                write!(f, "update_stock({item_id}, {delta})")
            }
            ToolCall::ChargePayment { order_id, amount } => {
                write!(f, "charge_payment({order_id}, {amount})")
            }
        }
    }
}

/// Runs `calls` in order in one session with `limits`, as the seed scenarios run theirs.
///
/// Global-scope reads share their cache with every other run, as they would in production:
/// run a script twice and its reads are hits from the start.
pub async fn run_script(calls: &[ToolCall], limits: SessionLimits) -> Report {
    let backend_before = BACKEND_CALLS.load(Ordering::SeqCst);
    let session = SessionLimits::apply(Some(limits), AgentCacheSession::builder()).build();
    let timeline = Timeline::new(session);
    let t = &timeline;
    let workflow = async {
        for call in calls {
            call.run_in(t).await;
        }
        calls.len()
    };
    timeline
        .finish("Custom sequence", backend_before, workflow, |n| {
            format!("all {n} calls ran")
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_call_forms_parse_with_quotes_and_comments() {
        let calls = parse_script(
            "# shop\n\nget_cart u1\nadd_to_cart(u1, \"gaming mouse\")\nsearch_web \"async rust\"\nupdate_stock SKU-1 -2\n",
        )
        .unwrap();
        assert_eq!(
            calls,
            [
                ToolCall::GetCart {
                    user_id: "u1".into()
                },
                ToolCall::AddToCart {
                    user_id: "u1".into(),
                    product_id: "gaming mouse".into()
                },
                ToolCall::SearchWeb {
                    query: "async rust".into()
                },
                ToolCall::UpdateStock {
                    item_id: "SKU-1".into(),
                    delta: -2
                },
            ]
        );
        assert_eq!(calls[1].to_string(), "add_to_cart(u1, gaming mouse)");
    }

    #[test]
    fn errors_name_the_line_and_what_is_allowed() {
        let error = parse_script("get_cart u1\nfly_to_moon now").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(
            error
                .to_string()
                .starts_with("line 2: unknown tool \"fly_to_moon\"")
        );
        assert!(error.message.contains("get_cart, get_product"));

        let error = parse_script("add_to_cart u1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 1: add_to_cart takes 2 argument(s) (user_id, product_id), got 1"
        );
        let error = parse_script("update_stock SKU-1 lots").unwrap_err();
        assert!(error.message.contains("whole number"), "{error}");
        let error = parse_script("charge_payment o1 NaN").unwrap_err();
        assert!(error.message.contains("amount must be a number"), "{error}");
        assert!(parse_script("get_cart(u1").is_err());
        assert!(parse_script("get_cart \"u1").is_err());
        assert_eq!(parse_script("  \n# nothing\n").unwrap_err().line, 0);
        let long = "check_stock SKU-1\n".repeat(MAX_SCRIPT_CALLS + 1);
        assert!(parse_script(&long).unwrap_err().message.contains("at most"));
    }
}
