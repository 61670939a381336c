//! [`Args`]: the dashboard binary's command line (`--port N`, `--redis URL`, in any order)
//! and the variables that stand in for them (`PORT`, `REDIS_URL`).

use std::fmt;

use super::DEFAULT_PORT;

/// What `dashboard --help` prints, and every refusal of the command line ends with.
pub const USAGE: &str = "usage: dashboard [--port N] [--redis URL]\n\
    \x20 --port N     listen on 127.0.0.1:N (default 5001; 0: any free port); or PORT=N\n\
    \x20 --redis URL  join the fleet of every dashboard on that Redis or Valkey server\n\
    \x20              (redis://host:port/db); or REDIS_URL=URL";

/// The dashboard's settings, from the command line and the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// The loopback port to listen on.
    pub port: u16,
    /// The Redis URL of the fleet to join; `None`: the caches stay process-local.
    pub redis: Option<String>,
}

/// Why the command line was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help` or `-h`: print [`USAGE`] and stop (successfully).
    Help,
    /// A mistake, said in a sentence (print it with [`USAGE`] and exit with status 2).
    Invalid(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str(USAGE),
            ArgsError::Invalid(why) => write!(f, "{why}\n{USAGE}"),
        }
    }
}

impl std::error::Error for ArgsError {}

impl Args {
    /// Reads `args` (without the program's name): `--port N` or `--port=N`, `--redis URL` or
    /// `--redis=URL`, each at most once, in any order. A flag absent from `args` falls back
    /// to its variable through `env` (`PORT`, `REDIS_URL`; an empty one counts as unset),
    /// then to its default. The URL is checked when the fleet connects, not here.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Args, ArgsError> {
        let invalid = |why: String| Err(ArgsError::Invalid(why));
        let mut port: Option<String> = None;
        let mut redis: Option<String> = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Err(ArgsError::Help);
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let (slot, example) = match flag.as_str() {
                "--port" => (&mut port, "--port 8080"),
                "--redis" => (&mut redis, "--redis redis://127.0.0.1:6379"),
                _ => return invalid(format!("unexpected argument {arg:?}")),
            };
            if slot.is_some() {
                return invalid(format!("{flag} is given twice"));
            }
            let value = match inline.or_else(|| args.next()) {
                Some(value) if !value.trim().is_empty() => value,
                _ => return invalid(format!("{flag} needs a value, e.g. {example}")),
            };
            *slot = Some(value);
        }
        let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let port = match (port, set("PORT")) {
            (Some(port), _) => parse_port(&port, "--port")?,
            (None, Some(port)) => parse_port(&port, "PORT")?,
            (None, None) => DEFAULT_PORT,
        };
        let redis = redis
            .or_else(|| set("REDIS_URL"))
            .map(|url| url.trim().to_owned());
        Ok(Args { port, redis })
    }
}

fn parse_port(text: &str, from: &str) -> Result<u16, ArgsError> {
    text.trim().parse::<u16>().map_err(|_| {
        ArgsError::Invalid(format!(
            "{from} must be a port number from 0 to 65535, got {text:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(list: &[&str], vars: &[(&str, &str)]) -> Result<Args, ArgsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Args::parse(list.iter().map(|arg| (*arg).to_owned()), |name| {
            vars.get(name).cloned()
        })
    }

    fn refusal(list: &[&str], vars: &[(&str, &str)]) -> String {
        match parse(list, vars) {
            Err(ArgsError::Invalid(why)) => why,
            other => panic!("{list:?} should be refused, got {other:?}"),
        }
    }

    fn args(port: u16, redis: Option<&str>) -> Args {
        Args {
            port,
            redis: redis.map(str::to_owned),
        }
    }

    #[test]
    fn the_port_comes_from_the_flag_then_the_environment_then_the_default() {
        assert_eq!(parse(&[], &[]), Ok(args(DEFAULT_PORT, None)));
        assert_eq!(parse(&[], &[("PORT", "8080")]), Ok(args(8080, None)));
        assert_eq!(
            parse(&["--port", "9000"], &[("PORT", "8080")]),
            Ok(args(9000, None))
        );
        assert_eq!(parse(&["--port=9001"], &[]), Ok(args(9001, None)));
        assert_eq!(parse(&["--port", "0"], &[]), Ok(args(0, None)));
        assert_eq!(parse(&[], &[("PORT", "")]), Ok(args(DEFAULT_PORT, None)));
        assert!(refusal(&["--port"], &[]).contains("--port needs a value"));
        assert!(refusal(&["--port="], &[]).contains("--port needs a value"));
        assert!(refusal(&["--port", "70000"], &[]).contains("from 0 to 65535, got \"70000\""));
        assert!(refusal(&[], &[("PORT", "http")]).starts_with("PORT must be a port number"));
    }

    #[test]
    fn the_redis_url_comes_from_the_flag_then_the_environment_in_any_order() {
        let url = "redis://127.0.0.1:6379";
        assert_eq!(
            parse(&["--redis", url, "--port", "8080"], &[]),
            Ok(args(8080, Some(url)))
        );
        assert_eq!(
            parse(&["--port", "8080", "--redis", url], &[]),
            Ok(args(8080, Some(url)))
        );
        assert_eq!(
            parse(&["--redis=redis://h:1/2"], &[]),
            Ok(args(DEFAULT_PORT, Some("redis://h:1/2")))
        );
        assert_eq!(
            parse(&[], &[("REDIS_URL", url)]),
            Ok(args(DEFAULT_PORT, Some(url)))
        );
        assert_eq!(
            parse(&["--redis", "redis://flag:1"], &[("REDIS_URL", url)]),
            Ok(args(DEFAULT_PORT, Some("redis://flag:1"))),
            "the flag wins over the variable"
        );
        assert_eq!(
            parse(&[], &[("REDIS_URL", " ")]),
            Ok(args(DEFAULT_PORT, None)),
            "an empty variable is unset"
        );
    }

    #[test]
    fn a_wrong_command_line_is_refused_with_the_reason_and_usage() {
        assert!(
            refusal(&["--redis"], &[]).contains("--redis needs a value, e.g. --redis redis://")
        );
        assert!(refusal(&["--redis", ""], &[]).contains("--redis needs a value"));
        assert!(refusal(&["--redis", "a", "--redis", "b"], &[]).contains("--redis is given twice"));
        assert!(refusal(&["--port", "1", "--port=2"], &[]).contains("--port is given twice"));
        assert!(refusal(&["--verbose"], &[]).contains("unexpected argument \"--verbose\""));
        assert!(refusal(&["redis://x"], &[]).contains("unexpected argument"));
        let shown = parse(&["--verbose"], &[]).unwrap_err().to_string();
        assert!(shown.ends_with(USAGE), "{shown}");
        assert_eq!(parse(&["--port", "1", "--help"], &[]), Err(ArgsError::Help));
        assert_eq!(parse(&["-h"], &[]), Err(ArgsError::Help));
    }
}
