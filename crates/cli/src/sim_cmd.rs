//! `raftkv sim`: one seeded simulation — the same run as `cargo run -p sim -- --seed N`
//! (`--kv`: a seeded KV run) — recorded as the dashboard's events, so the page can replay it
//! step by step. `--trace FILE` writes the trace (a JSON array, oldest first, `t` in virtual
//! ms); `--serve` serves the dashboard page and the trace on `--listen` until Ctrl-C, so no
//! cluster is needed to watch it.
//!
//! A failing seed (an invariant or liveness failure: the simulator panics) still writes and
//! serves its trace up to the failure, closed by an `end` event that carries the failure,
//! and the command exits non-zero.
//!
//! Owns: the subcommand's flags and output, writing the trace file, and the replay server's
//! two routes (`/` the page, `/trace.json` the trace). Must never: change the run (it calls
//! the simulator's recorded runs, which are the same runs, same trace hash), or serve
//! anything but those two read-only routes.

use anyhow::Context;
use axum::extract::RawQuery;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Args;
use sim::trace::TRACE_EVENTS_MAX_DEFAULT;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the replay server serves the trace.
const TRACE_PATH: &str = "/trace.json";

#[derive(Args, Debug)]
pub struct SimArgs {
    /// The seed: it derives the cluster (size, timing, limits), the fault schedule and the
    /// workload.
    #[arg(long)]
    pub seed: u64,

    /// Simulated minutes of faults before the liveness phase (Raft-level runs).
    #[arg(long, default_value_t = 1, conflicts_with = "kv")]
    pub minutes: u64,

    /// A seeded KV run (clerks, faults, linearizability check) instead of a Raft-level one.
    #[arg(long)]
    pub kv: bool,

    /// Mix random membership changes into a Raft-level run (as `sim --membership`).
    #[arg(long, conflicts_with = "kv")]
    pub membership: bool,

    /// Write the event trace (JSON array, oldest first) to this file.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Record at most this many events (past it, the trace ends early and says how many it
    /// left out).
    #[arg(long, default_value_t = TRACE_EVENTS_MAX_DEFAULT)]
    pub trace_events_max: usize,

    /// Serve the dashboard page replaying this run until Ctrl-C.
    #[arg(long)]
    pub serve: bool,

    /// Address of the replay server (`--serve`); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:2390", requires = "serve")]
    pub listen: SocketAddr,
}

pub async fn run(a: SimArgs) -> anyhow::Result<()> {
    let (seed, minutes, kv, max) = (a.seed, a.minutes, a.kv, a.trace_events_max);
    let opts = sim::RandomOptions {
        membership: a.membership,
    };
    let (outcome, trace) =
        tokio::task::spawn_blocking(move || sim::trace::record_seed(seed, minutes, kv, opts, max))
            .await
            .context("the simulation thread")?;
    match &outcome {
        Ok(report) => println!("{report}"),
        Err(why) => println!("seed {seed} FAILED: {why}"),
    }
    let mut json = Vec::with_capacity(trace.events.len() * 120);
    trace.write_json(&mut json)?;
    let note = match trace.full_at_ms {
        Some(at) => format!(
            "; FULL at {at} virtual ms: {} later events left out (raise --trace-events-max)",
            trace.left_out
        ),
        None => String::new(),
    };
    println!(
        "trace: {} events, {:.1} MB, {:.1} virtual s{note}",
        trace.events.len(),
        json.len() as f64 / 1e6,
        trace.last_ms() as f64 / 1000.0
    );
    if let Some(path) = &a.trace {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
        if !a.serve {
            println!(
                "replay it: open any member's dashboard and choose \"open trace\" (or drop the \
                 file on the page), or `raftkv sim{} --seed {} --serve` to serve the page with it",
                if a.kv {
                    " --kv"
                } else if a.membership {
                    " --membership"
                } else {
                    ""
                },
                a.seed
            );
        }
    }
    if a.serve {
        serve(a.listen, json).await?;
    } else if a.trace.is_none() {
        println!("(no --trace FILE or --serve: the trace was not kept)");
    }
    if let Err(why) = outcome {
        anyhow::bail!("seed {} failed: {why}", a.seed);
    }
    Ok(())
}

fn with_headers(code: StatusCode, content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut r = (code, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Serve the page (`/`, which loads the trace named by its `?trace=` parameter; without
/// one, a redirect to `/?trace=/trace.json`) and the trace until Ctrl-C.
async fn serve(listen: SocketAddr, json: Vec<u8>) -> anyhow::Result<()> {
    let json = axum::body::Bytes::from(json);
    let app = Router::new()
        .route(
            "/",
            get(|RawQuery(q): RawQuery| async move {
                let has_trace = q
                    .as_deref()
                    .unwrap_or("")
                    .split('&')
                    .any(|kv| kv.starts_with("trace="));
                if has_trace {
                    let page = server::admin::DASHBOARD_HTML;
                    with_headers(StatusCode::OK, "text/html; charset=utf-8", page)
                } else {
                    let mut r = StatusCode::SEE_OTHER.into_response();
                    let to = HeaderValue::from_static("/?trace=/trace.json");
                    r.headers_mut().insert(header::LOCATION, to);
                    r
                }
            }),
        )
        .route(
            TRACE_PATH,
            get(move || {
                let json = json.clone();
                async move { with_headers(StatusCode::OK, "application/json", json) }
            }),
        );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("replay: http://{addr}/?trace={TRACE_PATH} (Ctrl-C stops)");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the replay server")?;
    Ok(())
}
