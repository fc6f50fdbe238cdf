//! `tickflow serve` as an operator meets it: every flag has an environment variable and
//! both are in the README's configuration table (nothing missing, nothing extra); logs
//! carry no colour codes off a terminal and are JSON on request; `/metrics` has the
//! process's own series.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Variables tickflow reads outside its flags, which the README's table lists too.
const NON_FLAG_VARIABLES: [&str; 1] = ["RUST_LOG"];

/// How long `serve` may take to listen (it starts an embedded broker first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `(flag, environment variable)` of every option of `tickflow serve --help` but `--help`.
fn serve_options() -> Vec<(String, Option<String>)> {
    let out = Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .expect("tickflow runs");
    assert!(out.status.success(), "serve --help fails");
    let help = String::from_utf8(out.stdout).unwrap();
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        // Option lines start with a dash at a small indent; descriptions are indented deeper.
        if trimmed.starts_with('-') && indent < 8 {
            let flag = trimmed
                .split(|c: char| c == ',' || c.is_whitespace())
                .find(|w| w.starts_with("--"))
                .unwrap_or_else(|| panic!("no long flag in {line:?}"));
            options.push((flag.to_owned(), None));
        } else if let Some(rest) = trimmed.strip_prefix("[env: ") {
            let name: String = rest
                .chars()
                .take_while(|c| *c != '=' && *c != ']')
                .collect();
            let (flag, env) = options
                .last_mut()
                .expect("an [env] line follows its option");
            assert!(env.is_none(), "{flag} has two variables");
            *env = Some(name);
        }
    }
    options.retain(|(flag, _)| flag != "--help");
    assert!(options.len() > 30, "too few options parsed:\n{help}");
    options
}

/// The README's configuration table: the backticked flags and variables of each row's
/// first cell.
fn readme_rows() -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n### Configuration\n")
        .nth(1)
        .expect("README has a ### Configuration section");
    let section = section.split("\n#").next().unwrap();
    let rows: Vec<_> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let first_cell = row.split('|').nth(1).unwrap();
            let names = first_cell.split('`').skip(1).step_by(2);
            let (flags, vars): (BTreeSet<String>, BTreeSet<String>) =
                names.map(str::to_owned).partition(|n| n.starts_with("--"));
            for var in &vars {
                assert!(
                    var.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                    "{var:?} in the README table is neither a flag nor a variable"
                );
            }
            (flags, vars)
        })
        .collect();
    assert!(!rows.is_empty(), "README's configuration table has no rows");
    rows
}

#[test]
fn every_serve_flag_has_a_variable_and_the_readme_table_lists_exactly_them() {
    let options = serve_options();
    let rows = readme_rows();
    let no_variable: Vec<&String> = options
        .iter()
        .filter(|(_, env)| env.is_none())
        .map(|(flag, _)| flag)
        .collect();
    assert!(
        no_variable.is_empty(),
        "flags without an environment variable: {no_variable:?}"
    );

    let missing: Vec<String> = options
        .iter()
        .filter(|(flag, env)| {
            let env = env.as_ref().unwrap();
            !rows
                .iter()
                .any(|(flags, vars)| flags.contains(flag) && vars.contains(env))
        })
        .map(|(flag, env)| format!("`{flag}` / `{}`", env.as_deref().unwrap()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README's table (flag and variable on one row): {missing:?}"
    );

    let flags: BTreeSet<&str> = options.iter().map(|(f, _)| f.as_str()).collect();
    let vars: BTreeSet<&str> = options
        .iter()
        .filter_map(|(_, e)| e.as_deref())
        .chain(NON_FLAG_VARIABLES)
        .collect();
    let extra: Vec<&String> = rows
        .iter()
        .flat_map(|(f, v)| {
            f.iter()
                .filter(|f| !flags.contains(f.as_str()))
                .chain(v.iter().filter(|v| !vars.contains(v.as_str())))
        })
        .collect();
    assert!(
        extra.is_empty(),
        "in the README's table but not in `serve --help`: {extra:?}"
    );
}

/// `tickflow serve` on an embedded broker and the memory store, with `envs` (and nothing
/// else from the test's environment); its stderr lines arrive on the receiver.
fn spawn_serve(envs: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickflow"))
        .args(["serve", "--feed", "none", "--http-addr", "127.0.0.1:0"])
        .env_clear()
        .env("RUST_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tickflow serve starts");
    let stderr: ChildStderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Lines until one contains `needle`, which is returned with them.
fn lines_until(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let start = Instant::now();
    let mut lines = Vec::new();
    while start.elapsed() < START_TIMEOUT {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let found = line.contains(needle);
                lines.push(line);
                if found {
                    return lines;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!("no log line with {needle:?}; got:\n{}", lines.join("\n"));
}

/// Stops `child` with SIGTERM and gives the rest of its log.
fn stop(mut child: Child, rx: &mpsc::Receiver<String>) -> Vec<String> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
    rx.iter().collect()
}

/// The address in a `listening on http://ADDR` line.
fn listen_address(line: &str) -> String {
    let rest = &line[line.find("http://").expect("an address") + "http://".len()..];
    rest.chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect()
}

/// The body of `GET path` over plain HTTP/1.1.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "GET {path}: {response}"
    );
    response
}

#[test]
fn serve_logs_plain_text_off_a_terminal_and_exports_process_metrics() {
    let (child, rx) = spawn_serve(&[]);
    let mut lines = lines_until(&rx, "listening on http://");
    let addr = listen_address(lines.last().unwrap());
    let metrics = http_get(&addr, "/metrics");
    for series in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "ticks_consumed_total",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(series)),
            "{series} missing from /metrics:\n{metrics}"
        );
    }
    lines.extend(stop(child, &rx));
    let coloured: Vec<&String> = lines.iter().filter(|l| l.contains('\u{1b}')).collect();
    assert!(
        coloured.is_empty(),
        "colour codes in a piped log: {coloured:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" INFO ") && l.contains("shutting down")),
        "plain text lines with their level:\n{}",
        lines.join("\n")
    );
}

#[test]
fn serve_logs_one_json_object_per_line_on_request() {
    // The variable (the flag is the same option: the table test checks they are paired).
    let (child, rx) = spawn_serve(&[("TICKFLOW_LOG_FORMAT", "json")]);
    let mut lines = lines_until(&rx, "listening on http://");
    lines.extend(stop(child, &rx));
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(
            value["timestamp"].is_string()
                && value["level"].is_string()
                && value["fields"].is_object(),
            "a JSON log line has a timestamp, a level and fields: {line}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("shutting down")),
        "the shutdown is logged too:\n{}",
        lines.join("\n")
    );
}
