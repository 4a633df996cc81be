//! The client commands of `raftkv`: `put`, `get`, `del`, `append`, `watch`, `members`,
//! `status` — etcdctl's commands and output, over the [`client`] crate.
//!
//! Owns: the command-line shape of those commands (arguments, defaults, help with examples),
//! turning arguments into requests, and printing the rendered answer.
//! Must never: retry, route or interpret server errors itself (the `client` crate does), or
//! format responses beyond choosing a [`client::display`] rendering.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use client::display::{self, RangeView};
use client::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use client::{
    Client, ClientConfig, ClientError, DeleteRangeRequest, KeyRange, PutRequest, RangeRequest,
};
use serde_json::Value;

/// The client ports of the three members `raftkv dev` starts.
pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379";

/// The longest a connection attempt may take (shorter when `--timeout` is).
const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(2);

/// How to reach the cluster and how to print; shared by every client command.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ConnOpts {
    /// Members to talk to, comma-separated, as host:port or http://host:port. Any member
    /// serves any request; the client finds the leader by itself.
    #[arg(
        long,
        global = true,
        env = "RAFTKV_ENDPOINTS",
        value_delimiter = ',',
        default_value = DEFAULT_ENDPOINTS
    )]
    pub endpoints: Vec<String>,
    /// Output format: `simple` (etcdctl's lines and tables) or `json` (etcdctl's JSON, keys and
    /// values in base64).
    #[arg(short = 'w', long = "write-out", global = true, value_enum, default_value_t = WriteOut::Simple)]
    pub write_out: WriteOut,
    /// Deadline of the whole command, retries and failover included (e.g. 500ms, 5s, 1m).
    #[arg(long, global = true, value_parser = humantime::parse_duration, default_value = "5s")]
    pub timeout: Duration,
}

/// Output formats.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOut {
    Simple,
    Json,
}

/// The client commands, flattened into `raftkv`'s command list.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Store VALUE under KEY (exactly once, even when retried).
    #[command(
        long_about = "Store VALUE under KEY. Prints OK (and, with --prev-kv, the key and \
        value it replaced).\n\n\
        The write is exactly-once: if a member fails or leadership changes mid-request, the \
        client retries on another member with the same session sequence number, and the \
        cluster applies it once.\n\n\
        Examples:\n  \
        raftkv put greeting hello\n  \
        raftkv put greeting 'hello again' --prev-kv\n  \
        echo -n hello | raftkv put greeting        (VALUE from standard input)"
    )]
    Put(PutArgs),
    /// Read a key, a range, or every key with a prefix.
    #[command(
        long_about = "Read KEY, the range [KEY, RANGE_END), every key starting with KEY \
        (--prefix), or every key from KEY on (--from-key). Prints each key on a line and its \
        value on the next, like etcdctl.\n\n\
        Reads are linearizable: the member confirms with the leader (ReadIndex) that it is up \
        to date. --serializable answers from the member's local copy, which may be stale.\n\n\
        Examples:\n  \
        raftkv get greeting\n  \
        raftkv get users/ --prefix --keys-only\n  \
        raftkv get a c                      (keys from a up to, not including, c)\n  \
        raftkv get '' --prefix --count-only  (how many keys there are)\n  \
        raftkv get users/ --prefix --sort-by mod --order desc --limit 10"
    )]
    Get(GetArgs),
    /// Delete a key, a range, or every key with a prefix.
    #[command(
        long_about = "Delete KEY, the range [KEY, RANGE_END), every key starting with KEY \
        (--prefix) or every key from KEY on (--from-key). Prints the number of keys deleted \
        (and, with --prev-kv, each deleted key and value). Exactly-once, like put.\n\n\
        Examples:\n  \
        raftkv del greeting\n  \
        raftkv del users/ --prefix --prev-kv"
    )]
    Del(DelArgs),
    /// Add SUFFIX to the end of KEY's value (creating the key).
    #[command(
        long_about = "Add SUFFIX to the end of KEY's value, creating the key when it does \
        not exist, in one revision. Prints OK and the value's new length in bytes. \
        Exactly-once, like put: a retried append is not applied twice.\n\n\
        Examples:\n  \
        raftkv append log 'line 1;'\n  \
        raftkv append log 'line 2;'\n  \
        raftkv get log                      (line 1;line 2;)"
    )]
    Append(AppendArgs),
    /// List, add, remove, promote or update the cluster's members.
    #[command(
        long_about = "Without a subcommand (or with `list`): the cluster's members — ID \
        (hex, as etcdctl prints it), NAME, PEER URLS, CLIENT URLS, LEARNER, and a * on the \
        leader. A member added but not started yet has no name.\n\n\
        Growing the cluster by one: `raftkv members add NAME --peer-urls URL [--learner]`, \
        then start the new member with `raftkv serve --name NAME --initial-cluster \
        <the members and NAME=URL> --initial-cluster-state existing`; a learner gets the \
        log without voting, and `raftkv members promote NAME` makes it a voter once it \
        caught up. `raftkv members remove NAME|ID` takes a member out (the removed member \
        stops).\n\n\
        Examples:\n  \
        raftkv members\n  \
        raftkv members -w json\n  \
        raftkv members add n4 --peer-urls http://127.0.0.1:42380 --learner\n  \
        raftkv members promote n4\n  \
        raftkv members remove n1"
    )]
    Members(MembersArgs),
    /// Hand leadership to another member.
    #[command(
        long_about = "Ask the leader to hand leadership to member NAME (or hex ID): it \
        brings the target up to date and tells it to campaign at once. Returns when the \
        target leads.\n\n\
        Example:\n  \
        raftkv transfer-leader --to n2"
    )]
    TransferLeader(TransferLeaderArgs),
    /// Print the changes to a key, a range or a prefix as they happen.
    #[command(
        long_about = "Watch KEY, the range [KEY, RANGE_END), every key starting with KEY \
        (--prefix) or every key from KEY on (--from-key), and print each change as it \
        applies: PUT or DELETE on a line, then the key and its value (with --prev-kv, the \
        previous key and value first), like etcdctl watch. -w json prints one JSON object \
        per response.\n\n\
        --rev starts in the past: every member keeps a window of recent events \
        (--watch-history-events on the server). If the member serving the watch fails, the \
        watch moves to another member and goes on from the revision after the last one \
        printed, so no change is printed twice or left out; a start revision no member has \
        any more ends the command with a 'compacted' error.\n\n\
        Examples:\n  \
        raftkv watch greeting\n  \
        raftkv watch users/ --prefix --prev-kv\n  \
        raftkv watch users/ --prefix --rev 42 --count 10"
    )]
    Watch(WatchArgs),
    /// Show each endpoint's Raft status (leader, term, index, applied index, size).
    #[command(
        long_about = "Ask every endpoint given with --endpoints for its status: member \
        ID, whether it is the leader, Raft term, commit index, applied index, store size and \
        version. An endpoint that does not answer shows its error in its row, and the command \
        then exits with a nonzero code.\n\n\
        Examples:\n  \
        raftkv status\n  \
        raftkv status --endpoints 127.0.0.1:2379 -w json"
    )]
    Status(StatusArgs),
}

#[derive(Args, Debug)]
pub struct PutArgs {
    /// The key.
    pub key: String,
    /// The value; read from standard input when left out.
    #[arg(allow_hyphen_values = true)]
    pub value: Option<String>,
    /// Also print the key-value this put replaced.
    #[arg(long)]
    pub prev_kv: bool,
    #[command(flatten)]
    pub conn: ConnOpts,
}

/// Which keys a get or del names, besides KEY.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RangeOpts {
    /// The first key (inclusive).
    pub key: String,
    /// End of the range (exclusive): the command covers [KEY, RANGE_END).
    pub range_end: Option<String>,
    /// Every key starting with KEY ('' --prefix: every key).
    #[arg(long, conflicts_with_all = ["range_end", "from_key"])]
    pub prefix: bool,
    /// Every key greater than or equal to KEY.
    #[arg(long, conflicts_with = "range_end")]
    pub from_key: bool,
}

impl RangeOpts {
    /// The keys these options name.
    pub fn key_range(&self) -> KeyRange {
        let key = self.key.as_bytes().to_vec();
        if self.prefix {
            KeyRange::prefix(key)
        } else if self.from_key {
            KeyRange::from_key(key)
        } else if let Some(end) = &self.range_end {
            KeyRange::between(key, end.as_bytes().to_vec())
        } else {
            KeyRange::key(key)
        }
    }
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub range: RangeOpts,
    /// Return at most N keys (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub limit: i64,
    /// Print keys only, without values.
    #[arg(long)]
    pub keys_only: bool,
    /// Print only the number of keys.
    #[arg(long)]
    pub count_only: bool,
    /// Answer from the member's local copy without checking with the leader (may be stale).
    #[arg(long)]
    pub serializable: bool,
    /// Sort the keys by this field (ascending unless --order desc).
    #[arg(long, value_enum)]
    pub sort_by: Option<SortBy>,
    /// Sort order (by key unless --sort-by).
    #[arg(long, value_enum)]
    pub order: Option<Order>,
    #[command(flatten)]
    pub conn: ConnOpts,
}

/// What `get --sort-by` sorts on.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Creation revision.
    Create,
    /// Last modification revision.
    #[value(alias = "modify")]
    Mod,
    /// Number of modifications since creation.
    Version,
    /// The key's bytes.
    Key,
    /// The value's bytes.
    Value,
}

/// `get --order`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Smallest first.
    #[value(alias = "ascend")]
    Asc,
    /// Largest first.
    #[value(alias = "descend")]
    Desc,
}

impl GetArgs {
    /// The range request these arguments ask for.
    pub fn request(&self) -> RangeRequest {
        let (sort_order, sort_target) = match (self.sort_by, self.order) {
            (None, None) => (SortOrder::None, SortTarget::Key),
            (by, order) => {
                let order = match order.unwrap_or(Order::Asc) {
                    Order::Asc => SortOrder::Ascend,
                    Order::Desc => SortOrder::Descend,
                };
                let target = match by.unwrap_or(SortBy::Key) {
                    SortBy::Create => SortTarget::Create,
                    SortBy::Mod => SortTarget::Mod,
                    SortBy::Version => SortTarget::Version,
                    SortBy::Key => SortTarget::Key,
                    SortBy::Value => SortTarget::Value,
                };
                (order, target)
            }
        };
        RangeRequest {
            limit: self.limit,
            sort_order: sort_order as i32,
            sort_target: sort_target as i32,
            serializable: self.serializable,
            keys_only: self.keys_only,
            count_only: self.count_only,
            ..self.range.key_range().range_request()
        }
    }

    fn view(&self) -> RangeView {
        RangeView {
            keys_only: self.keys_only,
            count_only: self.count_only,
        }
    }
}

#[derive(Args, Debug)]
pub struct DelArgs {
    #[command(flatten)]
    pub range: RangeOpts,
    /// Also print every deleted key and value.
    #[arg(long)]
    pub prev_kv: bool,
    #[command(flatten)]
    pub conn: ConnOpts,
}

impl DelArgs {
    /// The delete request these arguments ask for.
    pub fn request(&self) -> DeleteRangeRequest {
        DeleteRangeRequest {
            prev_kv: self.prev_kv,
            ..self.range.key_range().delete_request()
        }
    }
}

#[derive(Args, Debug)]
pub struct AppendArgs {
    /// The key.
    pub key: String,
    /// The bytes to add to the end of the value.
    #[arg(allow_hyphen_values = true)]
    pub suffix: String,
    #[command(flatten)]
    pub conn: ConnOpts,
}

#[derive(Args, Debug)]
pub struct MembersArgs {
    #[command(subcommand)]
    pub action: Option<MembersAction>,
    #[command(flatten)]
    pub conn: ConnOpts,
}

#[derive(Subcommand, Debug)]
pub enum MembersAction {
    /// List the members (the default).
    List,
    /// Add a member that will start with --peer-urls (then start it with
    /// --initial-cluster-state existing).
    Add {
        /// The new member's name (it names itself when it starts; shown in the hint).
        name: String,
        /// Where the new member's peers will reach it, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
        /// Add it as a learner (receives the log, does not vote) to promote later.
        #[arg(long)]
        learner: bool,
    },
    /// Remove a member, by name or hex id.
    Remove { member: String },
    /// Make a caught-up learner a voter, by name or hex id.
    Promote { member: String },
    /// Change a member's peer URLs, by name or hex id.
    Update {
        member: String,
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct TransferLeaderArgs {
    /// The member to lead: name or hex id.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub conn: ConnOpts,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub range: RangeOpts,
    /// First revision to print (0: changes from now on).
    #[arg(long, default_value_t = 0, value_name = "REVISION")]
    pub rev: i64,
    /// Also print each change's previous key and value.
    #[arg(long)]
    pub prev_kv: bool,
    /// Stop after this many changes (0: until interrupted).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub count: u64,
    #[command(flatten)]
    pub conn: ConnOpts,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: ConnOpts,
}

/// Runs one client command and prints its answer to standard output. An error comes back as
/// a one-line message for the caller to print (and exit nonzero).
pub async fn run(cmd: ClientCommand) -> Result<()> {
    match cmd {
        ClientCommand::Put(args) => put(args).await,
        ClientCommand::Get(args) => get(args).await,
        ClientCommand::Del(args) => del(args).await,
        ClientCommand::Append(args) => append(args).await,
        ClientCommand::Members(args) => members(args).await,
        ClientCommand::TransferLeader(args) => transfer_leader(args).await,
        ClientCommand::Status(args) => status(args).await,
        ClientCommand::Watch(args) => watch(args).await,
    }
}

async fn watch(args: WatchArgs) -> Result<()> {
    if args.rev < 0 {
        bail!("watch: --rev must not be negative");
    }
    let client = connect(&args.conn).await?;
    let opts = client::WatchOptions {
        start_revision: args.rev,
        prev_kv: args.prev_kv,
    };
    let mut watcher = client
        .watch(args.range.key_range(), opts)
        .await
        .map_err(|e| failed("watch", &args.range.key, e))?;
    let mut printed = 0u64;
    loop {
        let mut resp = watcher
            .next()
            .await
            .map_err(|e| failed("watch", &args.range.key, e))?;
        if args.count > 0 {
            let left = usize::try_from(args.count - printed).unwrap_or(usize::MAX);
            resp.events.truncate(left);
        }
        printed += resp.events.len() as u64;
        emit(
            args.conn.write_out,
            || display::watch_simple(&resp),
            || display::watch_json(&resp),
        )?;
        if args.count > 0 && printed >= args.count {
            return Ok(());
        }
    }
}

async fn put(args: PutArgs) -> Result<()> {
    let value = match args.value {
        Some(value) => value.into_bytes(),
        None => read_stdin()?,
    };
    let client = connect(&args.conn).await?;
    let req = PutRequest {
        key: args.key.clone().into_bytes(),
        value,
        prev_kv: args.prev_kv,
        ..PutRequest::default()
    };
    let resp = client
        .put_with(req)
        .await
        .map_err(|e| failed("put", &args.key, e))?;
    emit(
        args.conn.write_out,
        || display::put_simple(&resp),
        || display::put_json(&resp),
    )
}

async fn get(args: GetArgs) -> Result<()> {
    let client = connect(&args.conn).await?;
    let resp = client
        .range(args.request())
        .await
        .map_err(|e| failed("get", &args.range.key, e))?;
    emit(
        args.conn.write_out,
        || display::range_simple(&resp, args.view()),
        || display::range_json(&resp),
    )
}

async fn del(args: DelArgs) -> Result<()> {
    let client = connect(&args.conn).await?;
    let resp = client
        .delete_range(args.request())
        .await
        .map_err(|e| failed("del", &args.range.key, e))?;
    emit(
        args.conn.write_out,
        || display::delete_simple(&resp),
        || display::delete_json(&resp),
    )
}

async fn append(args: AppendArgs) -> Result<()> {
    let client = connect(&args.conn).await?;
    let resp = client
        .append(args.key.clone(), args.suffix.clone())
        .await
        .map_err(|e| failed("append", &args.key, e))?;
    emit(
        args.conn.write_out,
        || display::append_simple(&resp),
        || display::append_json(&resp),
    )
}

/// The id of the member named `who` (a name, else a hex id as etcdctl prints it).
async fn resolve_member(client: &Client, who: &str) -> Result<u64> {
    let list = client
        .member_list()
        .await
        .map_err(|e| anyhow!("members: {e}"))?;
    if let Some(m) = list.members.iter().find(|m| m.name == who) {
        return Ok(m.id);
    }
    let hex = who.trim_start_matches("0x");
    match u64::from_str_radix(hex, 16) {
        Ok(id) if list.members.iter().any(|m| m.id == id) => Ok(id),
        _ => Err(anyhow!(
            "no member is named or has the id {who:?} (members: {})",
            list.members
                .iter()
                .map(|m| format!(
                    "{} {:x}",
                    if m.name.is_empty() {
                        "(unstarted)"
                    } else {
                        &m.name
                    },
                    m.id
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

async fn transfer_leader(args: TransferLeaderArgs) -> Result<()> {
    let client = connect(&args.conn).await?;
    let id = resolve_member(&client, &args.to).await?;
    client
        .move_leader(id)
        .await
        .map_err(|e| anyhow!("transfer-leader: {e}"))?;
    println!("Leadership transferred to {} ({id:x})", args.to);
    Ok(())
}

async fn members(args: MembersArgs) -> Result<()> {
    let client = connect(&args.conn).await?;
    let action = match args.action {
        None | Some(MembersAction::List) => None,
        Some(a) => Some(a),
    };
    if let Some(action) = action {
        return member_change(&client, action, args.conn.write_out).await;
    }
    let resp = client
        .member_list()
        .await
        .map_err(|e| anyhow!("members: {e}"))?;
    // The leader mark is best effort: the list is still worth printing without it.
    let leader = client.leader_id().await.unwrap_or(None);
    emit(
        args.conn.write_out,
        || display::members_table(&resp, leader),
        || display::members_json(&resp),
    )
}

async fn member_change(client: &Client, action: MembersAction, out: WriteOut) -> Result<()> {
    let (text, list) = match action {
        MembersAction::List => unreachable!("handled by members"),
        MembersAction::Add {
            name,
            peer_urls,
            learner,
        } => {
            let r = client
                .member_add(peer_urls.clone(), learner)
                .await
                .map_err(|e| anyhow!("members add: {e}"))?;
            let id = r.member.as_ref().map_or(0, |m| m.id);
            let mut cluster: Vec<String> = r
                .members
                .iter()
                .filter(|m| m.id != id)
                .filter_map(|m| Some(format!("{}={}", m.name, m.peer_ur_ls.first()?)))
                .collect();
            cluster.push(format!("{name}={}", peer_urls[0]));
            let text = format!(
                "Member {id:x} added to the cluster{}\n\n\
                 Start it with:\n  raftkv serve --name {name} --initial-cluster {} \
                 --initial-cluster-state existing --listen-peer-urls {} ...\n",
                if learner { " as a learner" } else { "" },
                cluster.join(","),
                peer_urls[0]
            );
            (text, r.members)
        }
        MembersAction::Remove { member } => {
            let id = resolve_member(client, &member).await?;
            let r = client
                .member_remove(id)
                .await
                .map_err(|e| anyhow!("members remove: {e}"))?;
            (
                format!("Member {id:x} removed from the cluster\n"),
                r.members,
            )
        }
        MembersAction::Promote { member } => {
            let id = resolve_member(client, &member).await?;
            let r = client
                .member_promote(id)
                .await
                .map_err(|e| anyhow!("members promote: {e}"))?;
            (
                format!("Member {id:x} promoted to a voting member\n"),
                r.members,
            )
        }
        MembersAction::Update { member, peer_urls } => {
            let id = resolve_member(client, &member).await?;
            let r = client
                .member_update(id, peer_urls)
                .await
                .map_err(|e| anyhow!("members update: {e}"))?;
            (format!("Member {id:x} updated\n"), r.members)
        }
    };
    let resp = client::proto::etcdserverpb::MemberListResponse {
        header: None,
        members: list,
    };
    emit(out, || text.clone(), || display::members_json(&resp))
}

async fn status(args: StatusArgs) -> Result<()> {
    let client = connect(&args.conn).await?;
    let rows = client.status_all().await;
    emit(
        args.conn.write_out,
        || display::status_table(&rows),
        || display::status_rows_json(&rows),
    )?;
    status_outcome(&rows)
}

/// Fails when some endpoint did not answer (its row already shows why).
fn status_outcome<T>(rows: &[(String, Result<T, ClientError>)]) -> Result<()> {
    let silent: Vec<&str> = rows
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(url, _)| url.as_str())
        .collect();
    if silent.is_empty() {
        return Ok(());
    }
    bail!(
        "status: {} of {} endpoints did not answer: {}",
        silent.len(),
        rows.len(),
        silent.join(", ")
    )
}

/// The client config for these options.
pub fn client_config(conn: &ConnOpts) -> ClientConfig {
    ClientConfig::new(conn.endpoints.iter().cloned())
        .request_timeout(conn.timeout)
        .connect_timeout(conn.timeout.min(CONNECT_TIMEOUT_MAX))
        .attempt_timeout(conn.timeout.min(CONNECT_TIMEOUT_MAX))
}

async fn connect(conn: &ConnOpts) -> Result<Client> {
    Client::connect(client_config(conn))
        .await
        .map_err(|e| anyhow!("{e}"))
}

/// A failed command as one line: what, on which key, why.
fn failed(command: &str, key: &str, err: ClientError) -> anyhow::Error {
    anyhow!("{command} {key:?}: {err}")
}

fn read_stdin() -> Result<Vec<u8>> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("put: VALUE is missing (give it after KEY, or pipe it on standard input)");
    }
    let mut value = Vec::new();
    std::io::stdin()
        .read_to_end(&mut value)
        .map_err(|e| anyhow!("put: reading the value from standard input: {e}"))?;
    Ok(value)
}

/// Prints the rendering `write_out` asks for. A closed pipe (`| head`) is not an error.
fn emit(
    write_out: WriteOut,
    simple: impl FnOnce() -> String,
    json: impl FnOnce() -> Value,
) -> Result<()> {
    let text = render(write_out, simple, json);
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow!("writing to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

fn render(
    write_out: WriteOut,
    simple: impl FnOnce() -> String,
    json: impl FnOnce() -> Value,
) -> String {
    match write_out {
        WriteOut::Simple => simple(),
        WriteOut::Json => format!("{}\n", json()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<ClientCommand, clap::Error> {
        let argv = std::iter::once("raftkv").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.cmd)
    }

    fn get(args: &[&str]) -> GetArgs {
        let argv: Vec<&str> = std::iter::once("get").chain(args.iter().copied()).collect();
        match parse(&argv).unwrap() {
            ClientCommand::Get(g) => g,
            other => panic!("{other:?}"),
        }
    }

    fn del(args: &[&str]) -> DelArgs {
        let argv: Vec<&str> = std::iter::once("del").chain(args.iter().copied()).collect();
        match parse(&argv).unwrap() {
            ClientCommand::Del(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_dev_cluster_simple_output_and_five_seconds() {
        let g = get(&["k"]);
        // RAFTKV_ENDPOINTS may be set in the environment running the tests.
        if std::env::var_os("RAFTKV_ENDPOINTS").is_none() {
            assert_eq!(
                g.conn.endpoints,
                ["127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"]
            );
        }
        assert_eq!(g.conn.write_out, WriteOut::Simple);
        assert_eq!(g.conn.timeout, Duration::from_secs(5));
    }

    #[test]
    fn connection_options_parse_lists_formats_and_durations() {
        let g = get(&[
            "k",
            "--endpoints",
            "a:1,http://b:2",
            "-w",
            "json",
            "--timeout",
            "250ms",
        ]);
        assert_eq!(g.conn.endpoints, ["a:1", "http://b:2"]);
        assert_eq!(g.conn.write_out, WriteOut::Json);
        assert_eq!(g.conn.timeout, Duration::from_millis(250));
        let cfg = client_config(&g.conn);
        assert_eq!(cfg.request_timeout, Duration::from_millis(250));
        assert_eq!(cfg.connect_timeout, Duration::from_millis(250));
        assert!(parse(&["get", "k", "--timeout", "soon"]).is_err());
        assert!(parse(&["get", "k", "-w", "yaml"]).is_err());
    }

    #[test]
    fn get_of_one_key_is_a_plain_linearizable_range() {
        let req = get(&["greeting"]).request();
        assert_eq!(req.key, b"greeting");
        assert!(req.range_end.is_empty());
        assert!(!req.serializable);
        assert_eq!(req.sort_order, SortOrder::None as i32);
        assert_eq!(req.limit, 0);
    }

    #[test]
    fn get_prefix_from_key_and_range_end_name_the_right_keys() {
        let req = get(&["users/", "--prefix"]).request();
        assert_eq!(
            (req.key, req.range_end),
            (b"users/".to_vec(), b"users0".to_vec())
        );
        let req = get(&["", "--prefix"]).request();
        assert_eq!((req.key, req.range_end), (vec![0], vec![0]));
        let req = get(&["m", "--from-key"]).request();
        assert_eq!((req.key, req.range_end), (b"m".to_vec(), vec![0]));
        let req = get(&["a", "c"]).request();
        assert_eq!((req.key, req.range_end), (b"a".to_vec(), b"c".to_vec()));
    }

    #[test]
    fn contradictory_range_options_are_refused() {
        assert!(parse(&["get", "a", "c", "--prefix"]).is_err());
        assert!(parse(&["get", "a", "c", "--from-key"]).is_err());
        assert!(parse(&["get", "a", "--prefix", "--from-key"]).is_err());
        assert!(parse(&["del", "a", "c", "--prefix"]).is_err());
        assert!(parse(&["get"]).is_err());
    }

    #[test]
    fn get_flags_map_to_request_fields() {
        let req = get(&[
            "k",
            "--prefix",
            "--limit",
            "10",
            "--keys-only",
            "--count-only",
            "--serializable",
        ])
        .request();
        assert_eq!(req.limit, 10);
        assert!(req.keys_only && req.count_only && req.serializable);
    }

    #[test]
    fn sorting_follows_etcdctl_defaults() {
        let req = get(&["k", "--prefix", "--sort-by", "mod"]).request();
        assert_eq!(req.sort_target, SortTarget::Mod as i32);
        assert_eq!(
            req.sort_order,
            SortOrder::Ascend as i32,
            "ascending by default"
        );
        let req = get(&["k", "--prefix", "--order", "desc"]).request();
        assert_eq!(req.sort_target, SortTarget::Key as i32, "by key by default");
        assert_eq!(req.sort_order, SortOrder::Descend as i32);
        let req = get(&["k", "--prefix", "--sort-by", "modify", "--order", "ascend"]).request();
        assert_eq!(req.sort_target, SortTarget::Mod as i32);
        assert!(parse(&["get", "k", "--sort-by", "size"]).is_err());
    }

    #[test]
    fn del_maps_prefix_and_prev_kv() {
        let req = del(&["users/", "--prefix", "--prev-kv"]).request();
        assert_eq!(
            (req.key, req.range_end),
            (b"users/".to_vec(), b"users0".to_vec())
        );
        assert!(req.prev_kv);
        let req = del(&["k"]).request();
        assert!(req.range_end.is_empty() && !req.prev_kv);
    }

    #[test]
    fn put_and_append_take_values_that_look_like_flags() {
        match parse(&["put", "k", "-1", "--prev-kv"]).unwrap() {
            ClientCommand::Put(p) => {
                assert_eq!(p.value.as_deref(), Some("-1"));
                assert!(p.prev_kv);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["put", "k"]).unwrap() {
            ClientCommand::Put(p) => assert_eq!(p.value, None, "read from stdin"),
            other => panic!("{other:?}"),
        }
        match parse(&["append", "k", "--x"]).unwrap() {
            ClientCommand::Append(a) => assert_eq!(a.suffix, "--x"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn members_and_status_take_only_connection_options() {
        assert!(matches!(parse(&["members"]), Ok(ClientCommand::Members(_))));
        assert!(matches!(
            parse(&["status", "--endpoints", "a:1"]),
            Ok(ClientCommand::Status(_))
        ));
        assert!(parse(&["members", "extra"]).is_err());
        match parse(&[
            "members",
            "add",
            "n4",
            "--peer-urls",
            "http://h:1",
            "--learner",
        ]) {
            Ok(ClientCommand::Members(MembersArgs {
                action:
                    Some(MembersAction::Add {
                        name,
                        peer_urls,
                        learner,
                    }),
                ..
            })) => {
                assert_eq!((name.as_str(), learner), ("n4", true));
                assert_eq!(peer_urls, ["http://h:1"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            parse(&["members", "add", "n4"]).is_err(),
            "--peer-urls is required"
        );
        match parse(&["members", "remove", "n1", "--endpoints", "a:1"]) {
            Ok(ClientCommand::Members(m)) => assert_eq!(m.conn.endpoints, ["a:1"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["transfer-leader", "--to", "n2"]),
            Ok(ClientCommand::TransferLeader(_))
        ));
    }

    #[test]
    fn output_uses_the_chosen_rendering() {
        let simple = render(WriteOut::Simple, || "OK\n".into(), || unreachable!());
        assert_eq!(simple, "OK\n");
        let json = render(
            WriteOut::Json,
            || unreachable!(),
            || serde_json::json!({"a": 1}),
        );
        assert_eq!(json, "{\"a\":1}\n");
    }

    #[test]
    fn status_fails_when_an_endpoint_is_silent() {
        let ok: Vec<(String, Result<(), ClientError>)> = vec![("http://a:1".into(), Ok(()))];
        assert!(status_outcome(&ok).is_ok());
        let mixed = vec![
            ("http://a:1".to_string(), Ok(())),
            (
                "http://b:2".to_string(),
                Err(ClientError::Config("x".into())),
            ),
        ];
        let err = status_outcome(&mixed).unwrap_err().to_string();
        assert_eq!(err, "status: 1 of 2 endpoints did not answer: http://b:2");
    }

    #[test]
    fn a_failure_is_one_line_naming_command_and_key() {
        let err = failed(
            "put",
            "k",
            ClientError::InvalidArgument("key is not provided".into()),
        );
        assert_eq!(
            err.to_string(),
            "put \"k\": invalid argument: key is not provided"
        );
    }
}
