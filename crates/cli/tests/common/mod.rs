//! A `raftkv dev` cluster as a test fixture: the real binary, real child processes, real
//! loopback ports. Started with `--fresh` in a temporary directory; stopped with SIGINT (and
//! killed if it does not stop) when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DevCluster {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `host:port` client endpoint of each member, in member order.
    pub endpoints: Vec<String>,
    /// Process id of each member.
    pub pids: Vec<i32>,
    /// Member names (n1, n2, ...).
    pub names: Vec<String>,
}

impl DevCluster {
    /// Start `members` members with client ports from `base_port` (see `raftkv dev --help`)
    /// and wait until the cluster reports a leader.
    pub fn start(base_port: u16, members: u16) -> DevCluster {
        Self::start_in(tempfile::tempdir().unwrap(), base_port, members, true)
    }

    /// Start in `dir` (its `cluster` subdirectory), keeping earlier data unless `fresh`.
    pub fn start_in(
        dir: tempfile::TempDir,
        base_port: u16,
        members: u16,
        fresh: bool,
    ) -> DevCluster {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raftkv"));
        cmd.arg("dev");
        if fresh {
            cmd.arg("--fresh");
        }
        let mut child = cmd
            .args(["--members", &members.to_string()])
            .args(["--base-port", &base_port.to_string()])
            .arg("--dir")
            .arg(dir.path().join("cluster"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("raftkv dev starts");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                println!("[dev] {line}");
                // Keep draining after the fixture stopped listening: a closed pipe would
                // make `raftkv dev` fail its next print.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut endpoints, mut pids, mut names) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("raftkv dev printed `cluster ready` within 60 s");
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() >= 9 && words[1] == "client" && words[7] == "pid" {
                names.push(words[0].to_string());
                endpoints.push(words[2].trim_start_matches("http://").to_string());
                pids.push(words[8].parse().unwrap());
            }
            if line.starts_with("cluster ready") {
                break;
            }
        }
        assert_eq!(endpoints.len(), members as usize, "one line per member");
        DevCluster {
            child,
            dir,
            endpoints,
            pids,
            names,
        }
    }

    pub fn endpoints_arg(&self) -> String {
        self.endpoints.join(",")
    }

    /// SIGKILL member `i`'s process.
    pub fn kill(&self, i: usize) {
        // SAFETY: signalling a process of our own cluster.
        assert_eq!(unsafe { libc::kill(self.pids[i], libc::SIGKILL) }, 0);
    }
}

impl DevCluster {
    /// Stop like a user's Ctrl-C; returns whether `raftkv dev` exited successfully, and the
    /// directory (data kept).
    pub fn interrupt(mut self) -> (bool, tempfile::TempDir) {
        let ok = self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (ok, dir)
    }

    fn stop(&mut self) -> bool {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            self.print_logs();
        }
    }
}

impl DevCluster {
    /// Print the end of every member's log (a failed test's evidence: elections, errors).
    pub fn print_logs(&self) {
        for name in &self.names {
            let path = self.dir.path().join("cluster").join(format!("{name}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("({e})"));
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(LOG_TAIL_LINES);
            println!(
                "---- {} (last {} lines) ----",
                path.display(),
                lines.len() - from
            );
            for l in &lines[from..] {
                println!("{l}");
            }
        }
    }
}

/// How much of each member's log a failed test prints.
const LOG_TAIL_LINES: usize = 60;

/// Run `etcdctl` (API v3) with `args` and optional stdin; returns (success, stdout, stderr).
/// The lines `out` (a child's pipe) prints, as they come; the channel closes with the pipe.
pub fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn etcdctl(endpoints: &str, args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "etcdctl runs (Debian package etcd-client; ./test.sh installs it when it is missing)",
        );
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            i.write_all(data).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
