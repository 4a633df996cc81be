//! `raftkv`: the one binary — `serve` runs a member, `dev` a local cluster, `sim` a recorded
//! simulation for the dashboard's replay, and the client commands (`put`, `get`, `del`,
//! `append`, `members`, `status`) talk to any cluster over the etcd v3 API.
//!
//! Owns: the command tree, logging setup and exit codes. Must never: hold server or client
//! logic (those live in `server` and `client`; this crate only parses and prints).

mod bench;
mod client_cmd;
mod dev;
mod serve;
mod sim_cmd;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ABOUT: &str =
    "raftkv: a replicated, linearizable key/value store on Raft, speaking etcd's v3 API";

const LONG_ABOUT: &str = "\
raftkv: a replicated, linearizable key/value store on Raft, speaking etcd's v3 API.

Start a local 3-member cluster:
    raftkv dev
Then, from another terminal:
    raftkv put greeting hello
    raftkv get greeting
    raftkv members
    etcdctl --endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 get greeting

Run one member of a real cluster (on each of three machines, with its own --name):
    raftkv serve --name n1 \\
        --initial-cluster n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380 \\
        --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://10.0.0.1:2379

Logging: RAFTKV_LOG=debug (or any tracing filter, e.g. RAFTKV_LOG=server=debug).";

#[derive(Parser, Debug)]
#[command(name = "raftkv", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one cluster member (flags, RAFTKV_* environment variables or a TOML file).
    #[command(long_about = "Run one cluster member until SIGINT or SIGTERM.\n\n\
        Every setting is a flag, an environment variable (RAFTKV_ + the flag name in capitals, \
        e.g. RAFTKV_INITIAL_CLUSTER) or a key of the --config-file TOML (the flag name without \
        dashes in front, e.g. heartbeat-interval = 50). Flags win over the environment, which \
        wins over the file.\n\n\
        Example (three members on one machine):\n  \
        raftkv serve --name n1 --initial-cluster n1=http://127.0.0.1:2380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380 \
        --listen-client-urls http://127.0.0.1:2379 --data-dir n1.raftkv")]
    Serve(Box<serve::ServeArgs>),
    /// Start a local cluster (3 members on 127.0.0.1:2379, :22379, :32379) and keep it
    /// running until Ctrl-C.
    #[command(
        long_about = "Start a local cluster of `raftkv serve` processes on loopback and \
        keep it running until Ctrl-C. Member 1 serves clients on --base-port (2379) and peers \
        on the next port; member i > 1 on base + i*10000 (22379, 32379, ...). Data and logs \
        stay in --dir for the next run unless --fresh is given."
    )]
    Dev(dev::DevArgs),
    /// Load-test any etcd v3 endpoint (raftkv or etcd): throughput and latency percentiles.
    Bench(bench::BenchArgs),
    /// Run one seeded simulation and record it for the dashboard's replay (`--trace FILE`,
    /// `--serve`).
    #[command(
        long_about = "Run one seeded simulation — the same run as `cargo run -p sim \
        -- --seed N` (--kv: a seeded KV run) — and record its events for the dashboard's \
        replay. --trace FILE writes them (a JSON array, oldest first, t in virtual ms); any \
        member's dashboard opens such a file (\"open trace\", drag and drop, or \
        ?trace=URL). --serve serves the page with this run's trace on --listen until \
        Ctrl-C, so no cluster is needed.\n\nExample:\n  raftkv sim --seed 42 --trace \
        seed42.json --serve"
    )]
    Sim(sim_cmd::SimArgs),
    #[command(flatten)]
    Client(client_cmd::ClientCommand),
}

/// Logs to stderr: `RAFTKV_LOG` or else `default` (a tracing filter).
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAFTKV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A simulation's nodes log their (simulated) crash recoveries: not news.
    init_logging(match cli.command {
        Command::Sim(_) => "error",
        _ => "info",
    });
    let result = match cli.command {
        Command::Serve(a) => serve::run(*a).await,
        Command::Dev(a) => dev::run(a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::Sim(a) => sim_cmd::run(a).await,
        Command::Client(c) => client_cmd::run(c).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raftkv: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
