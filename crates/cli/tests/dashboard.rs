//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven through
//! `chromedriver` (Debian's `chromium-driver`) by a minimal W3C WebDriver client over plain
//! HTTP — no browser download, no npm. Against `raftkv dev`: the page shows the leader;
//! SIGKILL the leader and the page shows a new leader in a higher term; SIGKILL the member
//! the page talks to and the page switches to the last one and shows no leader. Saves a
//! screenshot to `target/dashboard-screenshot.png`.
//!
//! Replay: `raftkv sim --seed 1 --trace FILE --serve` records a seeded simulation and serves
//! the page with it; stepping event by event, the page shows the first leader in its term,
//! then a crashed member as crashed (and not after one step back); played at 16× to the end
//! it shows the roles and terms of the trace's last events; the file input opens the same
//! file. Saves `target/dashboard-replay-screenshot.png`. Every wait polls the page's state
//! with a deadline.
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

/// A port free a moment ago, below the kernel's ephemeral range (32768–60999): a port from
/// `bind(0)` lies in that range, where an outgoing connection could take it as its local
/// port before chromedriver binds it.
fn free_port() -> u16 {
    let start = std::process::id() % 8000;
    (0..8000)
        .map(|k| 12_000 + ((start + k) % 8000) as u16)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port in 12000..20000")
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

    /// Poll `script`'s value until `ok` holds; panics with the last value after `limit`.
    fn wait_eval(&self, what: &str, limit: Duration, script: &str, ok: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.eval(script);
            if ok(&v) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page did not show {what} within {limit:?}; `{script}` is {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The WebDriver id of the element matching `css`.
    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn click(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    fn send_keys(&self, element: &str, text: &str) {
        let body = json!({ "text": text });
        self.call("POST", &format!("/element/{element}/value"), Some(body));
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
    target_path("dashboard-screenshot.png")
}

/// `target/<name>` (CI keeps the screenshots as artifacts).
fn target_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join(name)
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
    // The model changes at once, the drawing on the next animation frame: wait for it.
    let leader_name = old_name.clone();
    browser.wait_eval(
        "the ring colouring the leader",
        Duration::from_secs(5),
        "const g = document.querySelector('#ring g.node[data-role=leader]'); \
         return g ? g.dataset.name : null",
        |v| v == leader_name.as_str(),
    );
    browser.wait_eval(
        "one log row per member",
        Duration::from_secs(5),
        "return document.querySelectorAll('#logrows .row').length",
        |v| v == 3,
    );

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
    // The timeline is redrawn every half second.
    browser.wait_eval(
        "the timeline telling the election",
        Duration::from_secs(5),
        "return document.getElementById('events').textContent",
        |v| v.as_str().unwrap_or("").contains("won the election"),
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

/// `raftkv sim ... --serve` as a child process, killed when dropped.
struct SimServer {
    child: Child,
    /// The replay URL it printed.
    url: String,
}

impl SimServer {
    fn start(seed: u64, trace: &Path) -> SimServer {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(["sim", "--seed", &seed.to_string(), "--trace"])
            .arg(trace)
            .args(["--serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("raftkv sim starts");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                println!("[sim] {line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("raftkv sim printed its replay URL within 120 s");
            if let Some(rest) = line.strip_prefix("replay: ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        SimServer { child, url }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the trace says about each member after its first `upto` events: name → (role as the
/// page shows it, term, crashed).
fn trace_state(
    trace: &[Value],
    upto: usize,
) -> std::collections::BTreeMap<String, (String, u64, bool)> {
    let mut names = std::collections::HashMap::new();
    let mut out = std::collections::BTreeMap::new();
    for e in &trace[..upto] {
        let node = e["node"].as_str().unwrap_or("").to_string();
        match e["type"].as_str().unwrap() {
            "hello" => {
                let name = e["name"].as_str().unwrap().to_string();
                names.insert(node, name.clone());
                out.insert(name, ("follower".to_string(), 0, false));
            }
            "role" | "status" => {
                let m = out.get_mut(&names[&node]).unwrap();
                m.0 = e["role"].as_str().unwrap().to_string();
                m.1 = e["term"].as_u64().unwrap();
            }
            "crash" => out.get_mut(&names[&node]).unwrap().2 = true,
            "restart" => out.get_mut(&names[&node]).unwrap().2 = false,
            _ => {}
        }
    }
    out
}

/// The page's members as name → (role, term, crashed).
fn page_nodes(s: &Value) -> std::collections::BTreeMap<String, (String, u64, bool)> {
    s["nodes"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .map(|n| {
                    let crashed = n["crashed"] == true;
                    let role = if crashed {
                        "down"
                    } else {
                        n["role"].as_str().unwrap_or("")
                    };
                    (
                        n["name"].as_str().unwrap_or("").to_string(),
                        (role.to_string(), n["term"].as_u64().unwrap_or(0), crashed),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// As [`trace_state`], with a crashed member's role shown as `down`.
fn shown(
    mut m: std::collections::BTreeMap<String, (String, u64, bool)>,
) -> std::collections::BTreeMap<String, (String, u64, bool)> {
    for v in m.values_mut() {
        if v.2 {
            v.0 = "down".to_string();
        }
    }
    m
}

#[test]
fn the_page_replays_a_simulated_run_step_by_step() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trace.json");
    let sim = SimServer::start(1, &file);
    let trace: Vec<Value> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let n = trace.len();
    let first_t = &trace[0]["t"];
    let initial = trace.iter().take_while(|e| &e["t"] == first_t).count();
    let leader_at = trace
        .iter()
        .position(|e| e["type"] == "role" && e["role"] == "leader")
        .expect("the run elects a leader");
    let crash_at = trace
        .iter()
        .position(|e| e["type"] == "crash")
        .expect("the run crashes a member");
    assert!(
        initial <= leader_at && leader_at < crash_at,
        "{initial} {leader_at} {crash_at}"
    );
    assert_eq!(trace[n - 1]["type"], "end");
    assert_eq!(trace[n - 1]["ok"], true);
    println!(
        "trace of {n} events: first leader at event {leader_at}, first crash at {crash_at} \
         ({:.1} s to record)",
        started.elapsed().as_secs_f64()
    );

    let browser = Browser::start();
    browser.open(&sim.url);
    let pos = |s: &Value| s["replay"]["pos"].as_u64().map(|p| p as usize);
    browser.wait_for("the trace loaded", Duration::from_secs(20), |s| {
        s["replay"]["total"] == n && pos(s) == Some(initial)
    });
    let step = browser.find("#rp-step");
    let step_to = |k: usize| {
        let from = pos(&browser.state()).unwrap();
        for i in from..k {
            browser.click(&step);
            let at = browser.eval("return window.raftkvDashboard.state().replay.pos");
            assert_eq!(at, i + 1, "one step is one event");
        }
    };

    // Step to the first leader election: the page shows that leader, in its term.
    step_to(leader_at + 1);
    let expect = shown(trace_state(&trace, leader_at + 1));
    let (leader_name, (_, leader_term, _)) = expect
        .iter()
        .find(|(_, v)| v.0 == "leader")
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let s = browser.wait_for("the first leader", Duration::from_secs(10), |s| {
        s["leader"] == leader_name.as_str() && s["term"] == leader_term && page_nodes(s) == expect
    });
    println!("after {} events the page shows {s}", leader_at + 1);
    let ring_leader = format!("{leader_name} {leader_term}");
    browser.wait_eval(
        "the leader on the ring",
        Duration::from_secs(10),
        "const g = document.querySelector('#ring g.node[data-role=leader]'); \
         return g ? g.dataset.name + ' ' + g.dataset.term : null",
        |v| v == ring_leader.as_str(),
    );

    // Step past the first crash: that member shows as crashed; one step back, it does not.
    step_to(crash_at + 1);
    let crashed = {
        let id = trace[crash_at]["node"].as_str().unwrap();
        trace
            .iter()
            .find(|e| e["type"] == "hello" && e["node"] == id)
            .unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let expect = shown(trace_state(&trace, crash_at + 1));
    assert!(expect[&crashed].2);
    let s = browser.wait_for("the crashed member", Duration::from_secs(10), |s| {
        page_nodes(s) == expect
    });
    println!("after the crash of {crashed} the page shows {s}");
    browser.wait_eval(
        "the crashed member greyed on the ring",
        Duration::from_secs(10),
        &format!(
            "const g = document.querySelector('#ring g.node[data-name={crashed}]'); \
             return g ? g.dataset.crashed + ' ' + g.dataset.role : null"
        ),
        |v| v == "true down",
    );
    let told = format!("{crashed} crashed");
    browser.wait_eval(
        "the crash in the event list",
        Duration::from_secs(10),
        "return document.getElementById('events').textContent",
        |v| v.as_str().is_some_and(|t| t.contains(&told)),
    );
    browser.screenshot(&target_path("dashboard-replay-screenshot.png"));
    browser.click(&browser.find("#rp-back"));
    let expect_before = shown(trace_state(&trace, crash_at));
    browser.wait_for(
        "the member up again one step back",
        Duration::from_secs(10),
        |s| pos(s) == Some(crash_at) && page_nodes(s) == expect_before,
    );

    // Play at 16x to the end: the page shows the trace's final roles and terms.
    browser.click(&browser.find("#rp-speed option[value='16']"));
    browser.click(&browser.find("#rp-play"));
    let played_at = Instant::now();
    let expect = shown(trace_state(&trace, n));
    let s = browser.wait_for("the end of the run", Duration::from_secs(90), |s| {
        pos(s) == Some(n) && s["replay"]["playing"] == false && page_nodes(s) == expect
    });
    let final_leader = expect.iter().find(|(_, v)| v.0 == "leader").map(|(k, _)| k);
    assert_eq!(s["leader"].as_str(), final_leader.map(|l| l.as_str()));
    assert_eq!(s["replay"]["ended"]["ok"], true);
    println!(
        "played {:.1} virtual s at 16x in {:.1} s; the page shows {s}",
        trace[n - 1]["t"].as_f64().unwrap() / 1000.0,
        played_at.elapsed().as_secs_f64()
    );
    let shot = target_path("dashboard-replay-screenshot.png");
    println!("screenshot: {}", shot.display());

    // The same file through the page's file input.
    let input = browser.find("#tracefile");
    browser.send_keys(&input, file.to_str().unwrap());
    browser.wait_for("the file opened", Duration::from_secs(20), |s| {
        s["replay"]["name"] == "trace.json" && s["replay"]["total"] == n && pos(s) == Some(initial)
    });
    println!(
        "dashboard replay browser test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
