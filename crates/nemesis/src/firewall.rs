//! Network partitions made by the kernel: nftables drop rules between member addresses.
//!
//! Owns: the one nftables table [`TABLE`] (family `inet`) and its `input` chain. A partition
//! is a set of sides; every packet from an address of one side to an address of another is
//! dropped (both directions), so TCP connections between sides stall as on a cut cable
//! instead of failing fast. Members send peer traffic and forwarded writes from their own
//! address, so the rules cut exactly member-to-member traffic; the harness's clients connect
//! from 127.0.0.1 and still reach every member (as clients outside the cluster would).
//!
//! The table is deleted when [`Firewall::install`] starts (a leftover of a run that died),
//! by [`Firewall::remove`], and on drop — also while unwinding from a panic.
//!
//! Must never: touch any other table or rule of the machine, match an address outside the
//! members' own, or stay installed after the harness ends.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::Error;

/// The nftables table every rule lives in (`inet raftkv_nemesis`).
pub const TABLE: &str = "raftkv_nemesis";

/// The harness's nftables table. See the module docs.
#[derive(Debug)]
pub struct Firewall {
    installed: bool,
}

impl Firewall {
    /// Deletes a leftover table and creates an empty one (no rule: nothing is cut). Fails
    /// with a clear message when `nft` is missing or not permitted (it needs root or
    /// CAP_NET_ADMIN).
    pub fn install() -> Result<Firewall, Error> {
        remove_table().map_err(|reason| Error::Firewall {
            action: "delete a leftover table".into(),
            reason,
        })?;
        nft(&create_script()).map_err(|reason| Error::Firewall {
            action: format!("create table inet {TABLE}"),
            reason,
        })?;
        Ok(Firewall { installed: true })
    }

    /// Cuts every link between two different `sides` (replacing any previous partition).
    pub fn partition(&mut self, sides: &[Vec<Ipv4Addr>]) -> Result<(), Error> {
        assert!(self.installed, "partition after remove");
        nft(&partition_script(sides)).map_err(|reason| Error::Firewall {
            action: "install partition rules".into(),
            reason,
        })
    }

    /// Removes every rule: all links work again.
    pub fn heal(&mut self) -> Result<(), Error> {
        assert!(self.installed, "heal after remove");
        nft(&format!("flush chain inet {TABLE} input\n")).map_err(|reason| Error::Firewall {
            action: "flush the partition rules".into(),
            reason,
        })
    }

    /// Deletes the table. Idempotent.
    pub fn remove(&mut self) -> Result<(), Error> {
        if !self.installed {
            return Ok(());
        }
        self.installed = false;
        remove_table().map_err(|reason| Error::Firewall {
            action: format!("delete table inet {TABLE}"),
            reason,
        })
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if let Err(err) = self.remove() {
            eprintln!("nemesis: {err}");
        }
    }
}

/// Deletes the table if it exists (for a caller that must clean up without a [`Firewall`],
/// e.g. on a second Ctrl-C). `Err` carries what `nft` said.
pub fn remove_table() -> Result<(), String> {
    // `add` is a no-op on an existing table, so the pair deletes whether or not one existed.
    nft(&format!(
        "add table inet {TABLE}\ndelete table inet {TABLE}\n"
    ))
}

fn create_script() -> String {
    format!(
        "table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n  }}\n}}\n"
    )
}

/// The nft script for a partition into `sides`: a flush, then one drop rule per ordered pair
/// of different sides.
pub fn partition_script(sides: &[Vec<Ipv4Addr>]) -> String {
    let mut script = format!("flush chain inet {TABLE} input\n");
    for (a, from) in sides.iter().enumerate() {
        for (b, to) in sides.iter().enumerate() {
            if a == b || from.is_empty() || to.is_empty() {
                continue;
            }
            script.push_str(&format!(
                "add rule inet {TABLE} input ip saddr {} ip daddr {} drop\n",
                address_set(from),
                address_set(to)
            ));
        }
    }
    script
}

fn address_set(addresses: &[Ipv4Addr]) -> String {
    let list: Vec<String> = addresses.iter().map(Ipv4Addr::to_string).collect();
    format!("{{ {} }}", list.join(", "))
}

/// `nft` from `PATH`, else from the sbin directories a non-root `PATH` may lack.
fn nft_program() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("nft").is_file()))
        .unwrap_or(false);
    if !on_path {
        for dir in ["/usr/sbin", "/sbin"] {
            let candidate = std::path::Path::new(dir).join("nft");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    "nft".into()
}

/// Runs `nft -f -` with `script` on stdin.
fn nft(script: &str) -> Result<(), String> {
    let mut child = Command::new(nft_program())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run `nft` ({e}); install nftables (apt-get install nftables)")
        })?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes())
        .map_err(|e| format!("writing to nft: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for nft: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hint = if stderr.contains("Operation not permitted") {
        " (nft needs root or CAP_NET_ADMIN)"
    } else {
        ""
    };
    Err(format!(
        "nft failed ({}){hint}: {}\nscript:\n{script}",
        out.status,
        stderr.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, last)
    }

    #[test]
    fn a_two_three_split_drops_both_directions_between_sides_only() {
        let script = partition_script(&[vec![ip(11), ip(12)], vec![ip(13), ip(14), ip(15)]]);
        assert_eq!(
            script,
            "flush chain inet raftkv_nemesis input\n\
             add rule inet raftkv_nemesis input ip saddr { 127.0.0.11, 127.0.0.12 } ip daddr { 127.0.0.13, 127.0.0.14, 127.0.0.15 } drop\n\
             add rule inet raftkv_nemesis input ip saddr { 127.0.0.13, 127.0.0.14, 127.0.0.15 } ip daddr { 127.0.0.11, 127.0.0.12 } drop\n"
        );
    }

    #[test]
    fn one_side_cuts_nothing() {
        assert_eq!(
            partition_script(&[vec![ip(11), ip(12)]]),
            "flush chain inet raftkv_nemesis input\n"
        );
    }
}
