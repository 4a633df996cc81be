//! `raftkv serve`: one member, configured by flags, `RAFTKV_*` environment variables and an
//! optional TOML file (flags win over the environment, which wins over the file).
//!
//! Owns: the user-facing names of every server setting (etcd's flag names where etcd has the
//! setting), their defaults and their validation into a [`server::ServerConfig`], and the
//! process's life: start, serve until SIGINT/SIGTERM, stop cleanly. Must never: start with a
//! setting it could not parse (the error names the setting), or ignore an unknown key in the
//! config file.

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use server::runtime::NodeError;
use server::server::{ClientApiThreads, ClusterState, ServerError};
use server::{Server, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one member. Every flag also reads `RAFTKV_<FLAG>` (e.g. `RAFTKV_NAME`), and
/// `--config-file` reads the same settings from TOML (`name = "n1"`, `heartbeat-interval = 50`).
#[derive(Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// TOML file with any of these settings (keys are the flag names without `--`).
    #[arg(long, env = "RAFTKV_CONFIG_FILE", value_name = "PATH")]
    #[serde(skip)]
    pub config_file: Option<PathBuf>,

    /// This member's name; must appear in --initial-cluster. [default: default]
    #[arg(long, env = "RAFTKV_NAME")]
    pub name: Option<String>,

    /// Every member as NAME=PEER_URL, comma-separated, e.g.
    /// n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380.
    /// [default: <name>=http://127.0.0.1:2380]
    #[arg(long, env = "RAFTKV_INITIAL_CLUSTER", value_name = "NAME=URL,...")]
    pub initial_cluster: Option<String>,

    /// Distinguishes clusters built from the same member names; member and cluster ids are
    /// derived from it. [default: raftkv-cluster]
    #[arg(long, env = "RAFTKV_INITIAL_CLUSTER_TOKEN")]
    pub initial_cluster_token: Option<String>,

    /// Where the write-ahead log and snapshots live. [default: <name>.raftkv]
    #[arg(long, env = "RAFTKV_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// Address clients connect to (gRPC, etcd v3 API). [default: http://127.0.0.1:2379]
    #[arg(long, env = "RAFTKV_LISTEN_CLIENT_URLS", value_name = "URL")]
    pub listen_client_urls: Option<String>,

    /// Client URLs told to the other members (and shown by `members`), comma-separated.
    /// [default: the listen URL]
    #[arg(long, env = "RAFTKV_ADVERTISE_CLIENT_URLS", value_name = "URL,...")]
    pub advertise_client_urls: Option<String>,

    /// Address peers connect to. [default: this member's URL in --initial-cluster]
    #[arg(long, env = "RAFTKV_LISTEN_PEER_URLS", value_name = "URL")]
    pub listen_peer_urls: Option<String>,

    /// Leader heartbeat interval in milliseconds. [default: 50]
    #[arg(long, env = "RAFTKV_HEARTBEAT_INTERVAL", value_name = "MS")]
    pub heartbeat_interval: Option<u64>,

    /// Election timeout in milliseconds: a follower that hears no leader for a random time in
    /// [T, 2T) campaigns. Must exceed the heartbeat interval. [default: 300]
    #[arg(long, env = "RAFTKV_ELECTION_TIMEOUT", value_name = "MS")]
    pub election_timeout: Option<u64>,

    /// Snapshot the state machine and compact the log every this many applied entries, once
    /// the log also holds as many bytes as the last snapshot (a large state is not rewritten
    /// for a little log); the snapshot is written in the background (0: never).
    /// [default: 10000]
    #[arg(long, env = "RAFTKV_SNAPSHOT_COUNT", value_name = "ENTRIES")]
    pub snapshot_count: Option<u64>,

    /// Deadline of one client request, retries inside the cluster included, in milliseconds.
    /// [default: 5000]
    #[arg(long, env = "RAFTKV_REQUEST_TIMEOUT", value_name = "MS")]
    pub request_timeout: Option<u64>,

    /// Largest client request in bytes (etcd's limit). [default: 1572864]
    #[arg(long, env = "RAFTKV_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,

    /// Address of the admin HTTP endpoint: /metrics (Prometheus), /health, /status,
    /// /cluster, /events and the live dashboard at /. Also accepted under etcd's name,
    /// --listen-metrics-urls. [default: none]
    #[arg(
        long,
        alias = "listen-metrics-urls",
        env = "RAFTKV_LISTEN_ADMIN_URLS",
        value_name = "URL"
    )]
    #[serde(alias = "listen-metrics-urls")]
    pub listen_admin_urls: Option<String>,

    /// `new`: bootstrap the cluster of --initial-cluster; `existing`: join a running cluster
    /// this member was added to first (`raftkv members add NAME --peer-urls URL`), asking
    /// the other members of --initial-cluster. Read only when the data directory is new.
    /// [default: new]
    #[arg(
        long,
        env = "RAFTKV_INITIAL_CLUSTER_STATE",
        value_name = "new|existing"
    )]
    pub initial_cluster_state: Option<String>,

    /// Which threads serve the client API: `driver`, the member's consensus thread (no
    /// thread hand-off per request: least CPU per request, up to one core of client
    /// work), or `pool`, one worker thread per core (more client load than one core
    /// serves, a hand-off each way per request). [default: driver]
    #[arg(long, env = "RAFTKV_CLIENT_API_THREADS", value_name = "driver|pool")]
    pub client_api_threads: Option<String>,

    /// How many of the latest events this member keeps for watchers: a watch may start at
    /// any revision they cover (e.g. a client resuming after a reconnect); an older start
    /// is answered as compacted. 0: watches start from now only. [default: 10000]
    #[arg(long, env = "RAFTKV_WATCH_HISTORY_EVENTS", value_name = "EVENTS")]
    pub watch_history_events: Option<usize>,

    /// How often a watcher that asked for progress notifications gets one, in milliseconds
    /// (etcd's --experimental-watch-progress-notify-interval). [default: 600000]
    #[arg(
        long,
        alias = "experimental-watch-progress-notify-interval",
        env = "RAFTKV_WATCH_PROGRESS_NOTIFY_INTERVAL",
        value_name = "MS"
    )]
    pub watch_progress_notify_interval: Option<u64>,
}

impl ServeArgs {
    /// Settings from the command line and environment, completed from the config file.
    fn merged(self) -> anyhow::Result<ServeArgs> {
        let Some(path) = &self.config_file else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let f: ServeArgs = toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        Ok(ServeArgs {
            config_file: self.config_file,
            name: self.name.or(f.name),
            initial_cluster: self.initial_cluster.or(f.initial_cluster),
            initial_cluster_token: self.initial_cluster_token.or(f.initial_cluster_token),
            data_dir: self.data_dir.or(f.data_dir),
            listen_client_urls: self.listen_client_urls.or(f.listen_client_urls),
            advertise_client_urls: self.advertise_client_urls.or(f.advertise_client_urls),
            listen_peer_urls: self.listen_peer_urls.or(f.listen_peer_urls),
            heartbeat_interval: self.heartbeat_interval.or(f.heartbeat_interval),
            election_timeout: self.election_timeout.or(f.election_timeout),
            snapshot_count: self.snapshot_count.or(f.snapshot_count),
            request_timeout: self.request_timeout.or(f.request_timeout),
            max_request_bytes: self.max_request_bytes.or(f.max_request_bytes),
            listen_admin_urls: self.listen_admin_urls.or(f.listen_admin_urls),
            initial_cluster_state: self.initial_cluster_state.or(f.initial_cluster_state),
            client_api_threads: self.client_api_threads.or(f.client_api_threads),
            watch_history_events: self.watch_history_events.or(f.watch_history_events),
            watch_progress_notify_interval: self
                .watch_progress_notify_interval
                .or(f.watch_progress_notify_interval),
        })
    }

    /// The validated server configuration.
    pub fn into_config(self) -> anyhow::Result<ServerConfig> {
        let a = self.merged()?;
        let name = a.name.unwrap_or_else(|| "default".into());
        let initial_cluster = parse_cluster(
            &a.initial_cluster
                .unwrap_or_else(|| format!("{name}=http://127.0.0.1:2380")),
        )?;
        let listen_client = socket_addr(
            "--listen-client-urls",
            a.listen_client_urls
                .as_deref()
                .unwrap_or("http://127.0.0.1:2379"),
        )?;
        let listen_peer = a
            .listen_peer_urls
            .as_deref()
            .map(|u| socket_addr("--listen-peer-urls", u))
            .transpose()?;
        let listen_admin = a
            .listen_admin_urls
            .as_deref()
            .map(|u| socket_addr("--listen-admin-urls", u))
            .transpose()?;
        let initial_cluster_state = match a.initial_cluster_state.as_deref() {
            None | Some("new") => ClusterState::New,
            Some("existing") => ClusterState::Existing,
            Some(other) => {
                bail!("--initial-cluster-state must be new or existing, not {other:?}")
            }
        };
        let client_api_threads = match a.client_api_threads.as_deref() {
            None | Some("driver") => ClientApiThreads::Driver,
            Some("pool") => ClientApiThreads::Pool,
            Some(other) => bail!("--client-api-threads must be driver or pool, not {other:?}"),
        };
        let advertise_client_urls = a
            .advertise_client_urls
            .map(|s| s.split(',').map(|u| u.trim().to_string()).collect())
            .unwrap_or_default();
        Ok(ServerConfig {
            data_dir: a
                .data_dir
                .unwrap_or_else(|| PathBuf::from(format!("{name}.raftkv"))),
            name,
            initial_cluster,
            cluster_token: a
                .initial_cluster_token
                .unwrap_or_else(|| "raftkv-cluster".into()),
            listen_client,
            advertise_client_urls,
            listen_peer,
            heartbeat: Duration::from_millis(a.heartbeat_interval.unwrap_or(50)),
            election_timeout: Duration::from_millis(a.election_timeout.unwrap_or(300)),
            snapshot_entries: a.snapshot_count.unwrap_or(10_000),
            request_timeout: Duration::from_millis(a.request_timeout.unwrap_or(5000)),
            request_bytes_max: a
                .max_request_bytes
                .unwrap_or(server::server::REQUEST_BYTES_MAX_DEFAULT),
            listen_admin,
            initial_cluster_state,
            client_api_threads,
            watch_history_events: a
                .watch_history_events
                .unwrap_or(server::server::WATCH_HISTORY_EVENTS_DEFAULT),
            watch_progress_interval: Duration::from_millis(
                a.watch_progress_notify_interval.unwrap_or(600_000).max(1),
            ),
        })
    }
}

/// `name=url,name=url` → pairs; every entry must have both halves.
pub fn parse_cluster(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, url)) = part.split_once('=') else {
            bail!("--initial-cluster entry {part:?} must be NAME=PEER_URL");
        };
        if name.is_empty() || url.is_empty() {
            bail!("--initial-cluster entry {part:?} must be NAME=PEER_URL");
        }
        server::server::host_port(url).map_err(|e| anyhow::anyhow!("--initial-cluster: {e}"))?;
        out.push((name.to_string(), url.to_string()));
    }
    if out.is_empty() {
        bail!("--initial-cluster names no member");
    }
    Ok(out)
}

fn socket_addr(flag: &str, url: &str) -> anyhow::Result<SocketAddr> {
    let hp = server::server::host_port(url).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    use std::net::ToSocketAddrs;
    hp.to_socket_addrs()
        .with_context(|| format!("{flag}: cannot resolve {hp}"))?
        .next()
        .with_context(|| format!("{flag}: {hp} resolves to no address"))
}

/// Run one member until SIGINT or SIGTERM (or a fatal error).
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = args.into_config()?;
    let server = Server::start(cfg).await?;
    let stopped = server.stopped();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = term.recv() => tracing::info!("terminated; stopping"),
        _ = stopped.cancelled() => {}
    }
    match server.stop().await {
        Err(ServerError::Node(NodeError::Removed)) => {
            eprintln!("raftkv: this member was removed from the cluster; it stopped");
            Ok(())
        }
        r => Ok(r?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_single_member_on_the_etcd_ports() {
        let c = ServeArgs::default().into_config().unwrap();
        assert_eq!(c.name, "default");
        assert_eq!(
            c.initial_cluster,
            vec![("default".into(), "http://127.0.0.1:2380".into())]
        );
        assert_eq!(c.listen_client, "127.0.0.1:2379".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("default.raftkv"));
        assert_eq!(c.client_api_threads, ClientApiThreads::Driver);
    }

    #[test]
    fn client_api_threads_is_driver_or_pool() {
        let with = |v: &str| {
            ServeArgs {
                client_api_threads: Some(v.into()),
                ..Default::default()
            }
            .into_config()
        };
        assert_eq!(
            with("pool").unwrap().client_api_threads,
            ClientApiThreads::Pool
        );
        assert_eq!(
            with("driver").unwrap().client_api_threads,
            ClientApiThreads::Driver
        );
        let e = with("many").unwrap_err().to_string();
        assert!(e.contains("driver or pool"), "{e}");
    }

    #[test]
    fn flags_win_over_the_config_file_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "name = \"n2\"\nheartbeat-interval = 20\nelection-timeout = 200\n",
        )
        .unwrap();
        let a = ServeArgs {
            config_file: Some(f.clone()),
            heartbeat_interval: Some(30),
            ..Default::default()
        };
        let c = a.into_config().unwrap();
        assert_eq!(c.name, "n2");
        assert_eq!(c.heartbeat, Duration::from_millis(30));
        assert_eq!(c.election_timeout, Duration::from_millis(200));
        std::fs::write(&f, "nmae = \"typo\"\n").unwrap();
        let e = ServeArgs {
            config_file: Some(f),
            ..Default::default()
        }
        .into_config()
        .unwrap_err();
        assert!(format!("{e:#}").contains("nmae"), "{e:#}");
    }

    #[test]
    fn the_admin_endpoint_is_off_by_default_and_takes_etcds_metrics_flag_name() {
        assert_eq!(
            ServeArgs::default().into_config().unwrap().listen_admin,
            None
        );
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        use clap::Parser;
        for flag in ["--listen-admin-urls", "--listen-metrics-urls"] {
            let c = Cli::try_parse_from(["raftkv", flag, "http://127.0.0.1:2381"]).unwrap();
            assert_eq!(
                c.serve.into_config().unwrap().listen_admin,
                Some("127.0.0.1:2381".parse().unwrap()),
                "{flag}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listen-metrics-urls = \"http://127.0.0.1:9\"\n").unwrap();
        let c = ServeArgs {
            config_file: Some(f),
            ..Default::default()
        };
        assert_eq!(
            c.into_config().unwrap().listen_admin,
            Some("127.0.0.1:9".parse().unwrap())
        );
    }

    #[test]
    fn malformed_clusters_name_the_bad_entry() {
        assert_eq!(parse_cluster("a=http://h:1,b=http://h:2").unwrap().len(), 2);
        for bad in ["", "a", "a=", "=http://h:1", "a=http://nohost"] {
            assert!(parse_cluster(bad).is_err(), "{bad:?}");
        }
    }
}
