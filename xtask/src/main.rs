//! `cargo xtask test [ARGS]`: installs what the tests need, then runs every test.
//!
//! The workspace's tests use real programs: headless Chromium through chromedriver (the
//! dashboard's browser test) and `redis-server` (the fleet tier's tests start their own on a
//! free loopback port). This task finds each one, installs the missing ones with `apt-get`
//! (as root, or through `sudo -n`), then runs `cargo test --workspace ARGS`. When it cannot
//! install them it fails with the exact command to run; it never lets a test skip.
//!
//! `cargo xtask setup` only installs; `cargo xtask test -- --nocapture` passes arguments on.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// A program the tests run, and the Debian package that provides it.
struct Needed {
    program: &'static str,
    /// Where Debian puts it, for programs that are not on every PATH.
    debian_path: &'static str,
    package: &'static str,
    /// Which tests need it.
    purpose: &'static str,
}

const NEEDED: &[Needed] = &[
    Needed {
        program: "chromium",
        debian_path: "/usr/bin/chromium",
        package: "chromium",
        purpose: "the dashboard's browser test (examples/tests/dashboard_browser.rs)",
    },
    Needed {
        program: "chromedriver",
        debian_path: "/usr/bin/chromedriver",
        package: "chromium-driver",
        purpose: "the dashboard's browser test (examples/tests/dashboard_browser.rs)",
    },
    Needed {
        program: "redis-server",
        debian_path: "/usr/bin/redis-server",
        package: "redis-server",
        purpose: "the fleet tier's tests (tests/tests/fleet_*.rs, cache-redis)",
    },
];

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("test") => setup().and_then(|()| test(&rest)),
        Some("setup") => setup(),
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    "usage: cargo xtask test [ARGS]   install what the tests need, then cargo test --workspace ARGS\n\
     \x20      cargo xtask setup        only install what the tests need"
        .to_owned()
}

/// Installs every missing program, or says exactly how to.
fn setup() -> Result<(), String> {
    let missing: Vec<&Needed> = NEEDED.iter().filter(|n| find(n).is_none()).collect();
    if missing.is_empty() {
        for needed in NEEDED {
            eprintln!("xtask: {} found", needed.program);
        }
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
    let why: Vec<String> = missing
        .iter()
        .map(|n| format!("  {} (package {}): {}", n.program, n.package, n.purpose))
        .collect();
    eprintln!(
        "xtask: missing, to install with apt-get:\n{}",
        why.join("\n")
    );
    let manual = format!(
        "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y \
         --no-install-recommends {}",
        packages.join(" ")
    );
    if find_on_path("apt-get").is_none() {
        return Err(format!(
            "apt-get not found, so the tests' programs cannot be installed here. Install them \
             with your package manager (on Debian or Ubuntu: {manual}), then run `cargo xtask \
             test` again."
        ));
    }
    let sudo: &[&str] = if is_root() {
        &[]
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        &["sudo", "-n"]
    } else {
        return Err(format!(
            "not root and sudo needs a password, so the tests' programs cannot be installed \
             by this task. Run:\n  {manual}\nthen run `cargo xtask test` again."
        ));
    };
    run_apt(sudo, &["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(&packages);
    run_apt(sudo, &install)?;
    match missing.iter().find(|n| find(n).is_none()) {
        None => Ok(()),
        Some(still) => Err(format!(
            "{} is still missing after installing {}; install it by hand: {manual}",
            still.program, still.package
        )),
    }
}

fn run_apt(sudo: &[&str], args: &[&str]) -> Result<(), String> {
    let (program, prefix) = match sudo.split_first() {
        Some((program, rest)) => (*program, rest),
        None => ("apt-get", &[][..]),
    };
    let mut command = Command::new(program);
    command.args(prefix);
    if !sudo.is_empty() {
        command.arg("apt-get");
    }
    command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .map_err(|error| format!("cannot run apt-get: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}

/// Runs every test of the workspace.
fn test(args: &[String]) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["test", "--workspace"]).args(args);
    eprintln!("xtask: running cargo test --workspace {}", args.join(" "));
    let status = command
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}

fn find(needed: &Needed) -> Option<PathBuf> {
    find_on_path(needed.program).or_else(|| {
        let path = Path::new(needed.debian_path);
        path.is_file().then(|| path.to_path_buf())
    })
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn is_root() -> bool {
    // No libc dependency: `id -u` is everywhere apt-get is.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
}
