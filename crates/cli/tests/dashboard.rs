//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven through
//! `chromedriver` (Debian's `chromium-driver`) by a minimal W3C WebDriver client over plain
//! HTTP — no browser download, no npm. Against `raftkv dev`: the page shows the leader;
//! SIGKILL the leader and the page shows a new leader in a higher term; SIGKILL the member
//! the page talks to and the page switches to the last one and shows no leader. Saves a
//! screenshot to `target/dashboard-screenshot.png`.
//!
//! `./test.sh` installs `chromium` and `chromium-driver` when missing; run alone, this test
//! installs them itself when it runs as root (apt-get), and fails naming them otherwise.

mod common;
use common::DevCluster;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One HTTP/1.1 request over a fresh connection: (status, body). The body is read by its
/// Content-Length (or chunks): chromedriver keeps connections open.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 << 10];
    let (head, start) = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other(
                "connection closed before the headers",
            ));
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (
                String::from_utf8_lossy(&raw[..p]).to_ascii_lowercase(),
                p + 4,
            );
        }
    };
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let have = raw.len() - start;
        let done = match length {
            Some(n) => have >= n,
            None if chunked => raw.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let mut rest = raw[start..].to_vec();
    if let Some(n) = length {
        rest.truncate(n);
    } else if chunked {
        rest = dechunk(&rest);
    }
    Ok((code, String::from_utf8_lossy(&rest).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..nl])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < nl + 2 + size {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[(nl + 4 + size).min(b.len())..];
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Chromium and chromedriver from Debian, installed if missing and allowed.
fn ensure_browser() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    assert!(
        root,
        "{CHROMIUM} and {CHROMEDRIVER} are missing: install Debian's chromium and \
         chromium-driver (./test.sh does)"
    );
    eprintln!("installing chromium and chromium-driver (apt-get)");
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    assert!(ok(Command::new("apt-get").args(["update", "-qq"])));
    assert!(ok(Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium", "chromium-driver"])
        .env("DEBIAN_FRONTEND", "noninteractive")));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A chromedriver process and one browser session in it.
struct Browser {
    driver: Child,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        ensure_browser();
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(&addr, "GET", "/status", None).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let (code, body) = http(&addr, "POST", "/session", Some(&caps)).unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code, 200, "new session: {body}");
        let session = v["value"]["sessionId"].as_str().unwrap().to_string();
        Browser {
            driver,
            addr,
            session,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let (code, text) = http(&self.addr, method, &path, body.as_ref()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(code, 200, "{method} {path}: {text}");
        v["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// What the page shows (`raftkvDashboard.state()`), or Null before it started.
    fn state(&self) -> Value {
        let s = self.eval(
            "return window.raftkvDashboard ? JSON.stringify(window.raftkvDashboard.state()) : null",
        );
        s.as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null)
    }

    /// Poll the page until `ok(state)` holds; panics with the last state after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.state();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the page did not show {what} within {limit:?}; it shows {s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, to: &Path) {
        let b64 = self.call("GET", "/screenshot", None);
        std::fs::write(to, base64_decode(b64.as_str().unwrap())).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            &self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `raftkv dev` puts each member's admin endpoint on its client port + 2.
fn admin_addr(client_endpoint: &str) -> String {
    let (host, port) = client_endpoint.rsplit_once(':').unwrap();
    format!("{host}:{}", port.parse::<u16>().unwrap() + 2)
}

/// (name, role, term) of member `i` by its own `/status`, if it answers.
fn member_status(c: &DevCluster, i: usize) -> Option<(String, String, u64)> {
    let (code, body) = http(&admin_addr(&c.endpoints[i]), "GET", "/status", None).ok()?;
    let v: Value = serde_json::from_str(&body).ok().filter(|_| code == 200)?;
    Some((
        v["name"].as_str()?.to_string(),
        v["role"].as_str()?.to_string(),
        v["term"].as_u64()?,
    ))
}

fn leader_index(c: &DevCluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(i) = (0..c.endpoints.len())
            .find(|&i| member_status(c, i).is_some_and(|(_, role, _)| role == "leader"))
        {
            return i;
        }
        assert!(Instant::now() < deadline, "no member reports leading");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("dashboard-screenshot.png")
}

#[test]
fn the_page_follows_a_leader_change_and_a_lost_member() {
    let started = Instant::now();
    let c = DevCluster::start(1879, 3);
    let old = leader_index(&c);
    let old_name = c.names[old].clone();
    let (_, _, old_term) = member_status(&c, old).unwrap();
    // The browser talks to a follower, which aggregates the other members.
    let page = (old + 1) % 3;
    let browser = Browser::start();
    let url = format!("http://{}/", admin_addr(&c.endpoints[page]));
    browser.open(&url);
    let names = c.names.clone();
    let s = browser.wait_for("the leader", Duration::from_secs(15), |s| {
        s["leader"] == old_name.as_str()
            && s["nodes"].as_array().is_some_and(|n| {
                n.len() == 3
                    && n.iter()
                        .all(|m| names.iter().any(|x| m["name"] == x.as_str()))
            })
    });
    println!("page at {url} shows {s}");
    let ring_leader = browser.eval(
        "const g = document.querySelector('#ring g.node[data-role=leader]'); \
         return g ? g.dataset.name : null",
    );
    assert_eq!(
        ring_leader,
        old_name.as_str(),
        "the ring colours the leader"
    );
    let log_rows = browser.eval("return document.querySelectorAll('#logrows .row').length");
    assert_eq!(log_rows, 3, "one log row per member");

    let killed_at = Instant::now();
    c.kill(old);
    let s = browser.wait_for(
        "a new leader in a higher term",
        Duration::from_secs(10),
        |s| {
            s["leader"].as_str().is_some_and(|l| l != old_name)
                && s["term"].as_u64().is_some_and(|t| t > old_term)
                && s["nodes"].as_array().is_some_and(|n| {
                    n.iter()
                        .any(|m| m["name"] == old_name.as_str() && m["down"] == true)
                })
        },
    );
    println!(
        "{:.2} s after SIGKILL of leader {old_name} (term {old_term}) the page shows {s}",
        killed_at.elapsed().as_secs_f64()
    );
    let timeline = browser.eval("return document.getElementById('events').textContent");
    assert!(
        timeline.as_str().unwrap_or("").contains("won the election"),
        "the timeline tells the election: {timeline}"
    );
    let shot = screenshot_path();
    browser.screenshot(&shot);
    println!("screenshot: {}", shot.display());

    // The member the page talks to goes too: the page switches to the last one, which has
    // no quorum left.
    c.kill(page);
    let last = (0..3).find(|&i| i != old && i != page).unwrap();
    let last_url = format!("http://{}", admin_addr(&c.endpoints[last]));
    let s = browser.wait_for(
        "the last member, leaderless, with two down",
        Duration::from_secs(15),
        |s| {
            s["source"] == last_url.as_str()
                && s["leader"].is_null()
                && s["nodes"]
                    .as_array()
                    .is_some_and(|n| n.iter().filter(|m| m["down"] == true).count() == 2)
        },
    );
    println!("after losing its member the page shows {s}");
    println!(
        "dashboard browser test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
