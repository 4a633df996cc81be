//! The member table: who is in the cluster, by name and id, and where each member can be
//! reached by peers and by clients.
//!
//! Peer URLs come from the initial cluster (`name=peer-url,...`). Client URLs are what each
//! member advertises: a member sends its own in the hello of every peer connection it dials
//! (see [`crate::transport`]), so every member learns the client URLs of every member that is
//! up — a member that has never connected shows none, as an unstarted etcd member does.
//!
//! The admin URL (metrics and dashboard, see [`crate::admin`]) travels the same way, in an
//! optional section after the attributes (`[b'A'][len: u16 LE][utf-8]`), so that any member
//! can aggregate the status of the others.
//!
//! **Membership changes.** Who is a member (voter or learner) is the consensus core's
//! configuration; this table follows it ([`Members::set_conf`]) and lists only members of
//! the configuration. The peer URLs of members added at run time are replicated through the
//! log as [`MemberRecord`]s in the state machine's meta map (key [`record_key`]), so every
//! member learns where to dial a new one when the record applies; a record also overrides
//! the initial cluster's URL of a member (MemberUpdate). A member added by MemberAdd has no
//! name until it starts and advertises one.
//!
//! Owns: [`Member`], [`Members`], member and cluster ids derived from names and the cluster
//! token, the compact encoding of advertised attributes, member records and the cluster
//! directory a joining member asks for. Must never: decide who votes (that is the consensus
//! core's configuration), or trust attributes from a connection whose hello failed the
//! cluster and node check.

use bytes::Bytes;
use raft::{Configuration, NodeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub name: String,
    pub peer_urls: Vec<String>,
    /// Empty until the member has advertised them.
    pub client_urls: Vec<String>,
}

/// The member table shared by the transport (which learns client URLs) and the services.
#[derive(Debug, Default)]
pub struct Members {
    /// Every member ever known here (initial cluster, records, a join's directory).
    by_id: RwLock<BTreeMap<NodeId, Member>>,
    /// The node's configuration; `None` until the node publishes one (then every known
    /// member is listed).
    conf: RwLock<Option<Configuration>>,
    /// The leader the node knows (0: none), for the directory a member answers.
    leader: std::sync::atomic::AtomicU64,
    /// Admin URL of each member that advertised one (this member's own is set at start).
    admin_urls: RwLock<BTreeMap<NodeId, String>>,
}

/// Largest encoded attribute block a hello may carry.
pub const ATTRS_BYTES_MAX: usize = 4096;
/// Marks the admin URL section after the attributes.
const ADMIN_TAG: u8 = b'A';

/// FNV-1a, 64 bits: a stable hash for ids (the same on every machine and build).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The member id of `name` in the cluster named by `token`: never 0 (0 means "none" in
/// Raft messages and in etcd's API).
pub fn member_id(token: &str, name: &str) -> NodeId {
    NodeId(fnv1a(&[b"member", token.as_bytes(), name.as_bytes()]).max(1))
}

/// The cluster id of the members `ids` under `token` (order does not matter).
pub fn cluster_id(token: &str, ids: impl IntoIterator<Item = NodeId>) -> u64 {
    let mut ids: Vec<u64> = ids.into_iter().map(|i| i.0).collect();
    ids.sort_unstable();
    let bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    fnv1a(&[b"cluster", token.as_bytes(), &bytes]).max(1)
}

impl Members {
    pub fn new(members: impl IntoIterator<Item = Member>) -> Self {
        Members {
            by_id: RwLock::new(members.into_iter().map(|m| (m.id, m)).collect()),
            conf: RwLock::default(),
            leader: Default::default(),
            admin_urls: RwLock::default(),
        }
    }

    /// Every member of the configuration (voters and learners), by id; a member without a
    /// record yet shows with an empty name and no URLs.
    pub fn list(&self) -> Vec<Member> {
        let by_id = self.by_id.read().expect("members lock");
        let conf = self.conf.read().expect("members lock");
        let Some(conf) = conf.as_ref() else {
            return by_id.values().cloned().collect();
        };
        conf.members()
            .map(|id| {
                by_id.get(&id).cloned().unwrap_or(Member {
                    id,
                    name: String::new(),
                    peer_urls: vec![],
                    client_urls: vec![],
                })
            })
            .collect()
    }

    /// Whether `id` is a learner of the current configuration.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.conf
            .read()
            .expect("members lock")
            .as_ref()
            .is_some_and(|c| c.is_learner(id))
    }

    /// Whether `id` is a voter or learner of the current configuration (before the node
    /// published one: whether it is known).
    pub fn is_member(&self, id: NodeId) -> bool {
        match self.conf.read().expect("members lock").as_ref() {
            Some(c) => c.is_member(id),
            None => self.get(id).is_some(),
        }
    }

    /// The leader this member knows (`NodeId::NONE` when none).
    pub fn leader(&self) -> NodeId {
        NodeId(self.leader.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Follow the node's view of the leader.
    pub fn set_leader(&self, leader: Option<NodeId>) {
        let id = leader.unwrap_or(NodeId::NONE).0;
        self.leader.store(id, std::sync::atomic::Ordering::Relaxed);
    }

    /// Follow the node's configuration.
    pub fn set_conf(&self, conf: Configuration) {
        *self.conf.write().expect("members lock") = Some(conf);
    }

    /// Apply a replicated record of member `id`: its peer URLs, and its name when the record
    /// has one.
    pub fn apply_record(&self, id: NodeId, rec: &MemberRecord) {
        let mut by_id = self.by_id.write().expect("members lock");
        let m = by_id.entry(id).or_insert_with(|| Member {
            id,
            name: String::new(),
            peer_urls: vec![],
            client_urls: vec![],
        });
        if !rec.name.is_empty() {
            m.name = rec.name.clone();
        }
        m.peer_urls = rec.peer_urls.clone();
    }

    /// Apply every member record of a meta map (see [`record_key`]); undecodable records
    /// are skipped with a warning (they were written by a newer version).
    pub fn apply_records(&self, meta: &BTreeMap<Bytes, Bytes>) {
        for (k, v) in meta.range(Bytes::from_static(RECORD_PREFIX)..) {
            let Some(id) = parse_record_key(k) else {
                break;
            };
            match MemberRecord::decode(v) {
                Ok(rec) => self.apply_record(id, &rec),
                Err(why) => tracing::warn!(?id, %why, "member record ignored"),
            }
        }
    }

    /// `host:port` of the first peer URL of every member of `conf` that has one.
    pub fn peer_addrs(&self, conf: &Configuration) -> HashMap<NodeId, String> {
        let by_id = self.by_id.read().expect("members lock");
        conf.members()
            .filter_map(|id| {
                let url = by_id.get(&id)?.peer_urls.first()?;
                Some((id, crate::server::host_port(url).ok()?.to_string()))
            })
            .collect()
    }

    /// The member whose peer URLs include `url`, if any.
    pub fn by_peer_url(&self, url: &str) -> Option<Member> {
        let norm = |u: &str| u.trim_end_matches('/').to_string();
        self.list()
            .into_iter()
            .find(|m| m.peer_urls.iter().any(|p| norm(p) == norm(url)))
    }

    pub fn get(&self, id: NodeId) -> Option<Member> {
        self.by_id.read().expect("members lock").get(&id).cloned()
    }

    /// The first client URL `id` advertised, if any.
    pub fn client_url(&self, id: NodeId) -> Option<String> {
        self.get(id).and_then(|m| m.client_urls.into_iter().next())
    }

    /// The admin URL member `id` advertised (or this member's own), if any.
    pub fn admin_url(&self, id: NodeId) -> Option<String> {
        self.admin_urls
            .read()
            .expect("members lock")
            .get(&id)
            .cloned()
    }

    /// Record member `id`'s admin URL (ignored for unknown members).
    pub fn set_admin_url(&self, id: NodeId, url: String) {
        if self.get(id).is_some() {
            self.admin_urls
                .write()
                .expect("members lock")
                .insert(id, url);
        }
    }

    /// `attrs` encoded for the hello of member `me`, with its admin URL section when it has
    /// one.
    pub fn encode_attrs(&self, me: NodeId, attrs: &Attrs) -> Vec<u8> {
        let mut out = attrs.encode();
        if let Some(url) = self.admin_url(me) {
            if out.len() + 3 + url.len() <= ATTRS_BYTES_MAX {
                out.push(ADMIN_TAG);
                put_str(&mut out, &url);
            }
        }
        out
    }

    /// Record what member `id` advertised in an attribute block with an optional admin
    /// section ([`Members::encode_attrs`]).
    pub fn learn_encoded(&self, id: NodeId, b: &[u8]) -> Result<(), String> {
        let (attrs, admin) = Attrs::decode_with_admin(b)?;
        let known = self
            .get(id)
            .is_some_and(|m| m.name == attrs.name || m.name.is_empty());
        self.learn(id, attrs);
        if let (true, Some(url)) = (known, admin) {
            self.set_admin_url(id, url);
        }
        Ok(())
    }

    /// Record what member `id` advertised; attributes of unknown members are ignored.
    pub fn learn(&self, id: NodeId, attrs: Attrs) {
        let mut by_id = self.by_id.write().expect("members lock");
        match by_id.get_mut(&id) {
            Some(m) if m.name == attrs.name => m.client_urls = attrs.client_urls,
            // A member added at run time names itself when it starts.
            Some(m) if m.name.is_empty() && !attrs.name.is_empty() => {
                m.name = attrs.name;
                m.client_urls = attrs.client_urls;
            }
            Some(m) => tracing::warn!(
                ?id,
                expected = %m.name,
                advertised = %attrs.name,
                "a peer advertised another member's name; ignored"
            ),
            None => tracing::debug!(?id, "attributes of an unknown member ignored"),
        }
    }
}

/// What a member advertises about itself to its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attrs {
    pub name: String,
    pub client_urls: Vec<String>,
}

impl Attrs {
    /// `[name][n: u8][url]*`, each string `[len: u16 LE][utf-8]`, at most
    /// [`ATTRS_BYTES_MAX`] bytes (URLs that do not fit are left out).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_str(&mut out, &self.name);
        let n_at = out.len();
        out.push(0);
        for url in &self.client_urls {
            if out.len() + 2 + url.len() > ATTRS_BYTES_MAX || out[n_at] == u8::MAX {
                break;
            }
            put_str(&mut out, url);
            out[n_at] += 1;
        }
        out
    }

    /// [`Attrs::decode`] of a block that may end with an admin URL section.
    pub fn decode_with_admin(b: &[u8]) -> Result<(Attrs, Option<String>), String> {
        let (attrs, mut rest) = Attrs::decode_prefix(b)?;
        let admin = match rest.split_first() {
            None => None,
            Some((&ADMIN_TAG, r)) => {
                rest = r;
                Some(get_str(&mut rest)?)
            }
            Some((t, _)) => return Err(format!("attributes: unknown section {t:#x}")),
        };
        if !rest.is_empty() {
            return Err(format!("attributes: {} trailing bytes", rest.len()));
        }
        Ok((attrs, admin))
    }

    fn decode_prefix(mut b: &[u8]) -> Result<(Attrs, &[u8]), String> {
        let name = get_str(&mut b)?;
        let (&n, rest) = b.split_first().ok_or("attributes: truncated")?;
        b = rest;
        let client_urls = (0..n).map(|_| get_str(&mut b)).collect::<Result<_, _>>()?;
        Ok((Attrs { name, client_urls }, b))
    }

    pub fn decode(mut b: &[u8]) -> Result<Attrs, String> {
        let name = get_str(&mut b)?;
        let (&n, rest) = b.split_first().ok_or("attributes: truncated")?;
        b = rest;
        let client_urls = (0..n).map(|_| get_str(&mut b)).collect::<Result<_, _>>()?;
        if !b.is_empty() {
            return Err(format!("attributes: {} trailing bytes", b.len()));
        }
        Ok(Attrs { name, client_urls })
    }
}

/// `s` as `[len: u16 LE][utf-8]`, cut to at most 1024 bytes at a character boundary (a cut
/// inside a character would make the whole block undecodable, and the hello refused).
/// Meta-map key prefix of member records.
const RECORD_PREFIX: &[u8] = b"member/";
/// Format byte of an encoded [`MemberRecord`].
const RECORD_FORMAT: u8 = 1;

/// The meta-map key of member `id`'s record: `member/` and the id as 16 hex digits, so
/// records sort by id.
pub fn record_key(id: NodeId) -> Bytes {
    Bytes::from(format!("member/{:016x}", id.0))
}

fn parse_record_key(k: &[u8]) -> Option<NodeId> {
    let hex = k.strip_prefix(RECORD_PREFIX)?;
    let hex = std::str::from_utf8(hex).ok().filter(|h| h.len() == 16)?;
    u64::from_str_radix(hex, 16).ok().map(NodeId)
}

/// What the log says about a member beside its place in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// Empty for a member added by MemberAdd that has not started yet.
    pub name: String,
    pub peer_urls: Vec<String>,
}

impl MemberRecord {
    /// `[1][name][n: u8][url]*`, strings as in [`Attrs`].
    pub fn encode(&self) -> Bytes {
        let mut out = vec![RECORD_FORMAT];
        put_str(&mut out, &self.name);
        let urls = &self.peer_urls[..self.peer_urls.len().min(u8::MAX as usize)];
        out.push(urls.len() as u8);
        for u in urls {
            put_str(&mut out, u);
        }
        Bytes::from(out)
    }

    pub fn decode(b: &[u8]) -> Result<MemberRecord, String> {
        let (&f, mut b) = b.split_first().ok_or("member record: empty")?;
        if f != RECORD_FORMAT {
            return Err(format!("member record: unknown format {f}"));
        }
        let name = get_str(&mut b)?;
        let (&n, rest) = b.split_first().ok_or("member record: truncated")?;
        b = rest;
        let peer_urls = (0..n).map(|_| get_str(&mut b)).collect::<Result<_, _>>()?;
        if !b.is_empty() {
            return Err(format!("member record: {} trailing bytes", b.len()));
        }
        Ok(MemberRecord { name, peer_urls })
    }
}

/// What a member answers a joining member that asks who is in the cluster: the cluster id
/// and every member with its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    pub cluster_id: u64,
    /// Who answered, and the leader it knows (0: none).
    pub from: NodeId,
    pub leader: NodeId,
    /// `(member, is_learner)`.
    pub members: Vec<(Member, bool)>,
}

/// Most members a directory lists.
const DIRECTORY_MEMBERS_MAX: usize = 1024;

impl Directory {
    /// This member's view.
    pub fn of(cluster_id: u64, from: NodeId, members: &Members) -> Directory {
        Directory {
            cluster_id,
            from,
            leader: members.leader(),
            members: members
                .list()
                .into_iter()
                .map(|m| {
                    let l = members.is_learner(m.id);
                    (m, l)
                })
                .collect(),
        }
    }

    /// Whether the answering member led when it answered.
    pub fn from_leader(&self) -> bool {
        self.from.is_some() && self.from == self.leader
    }

    /// `[cluster u64 LE][from u64 LE][leader u64 LE][n: u16 LE]` then per member `[id u64 LE][learner u8][name]
    /// [n u8][peer url]*[n u8][client url]*`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.cluster_id.to_le_bytes().to_vec();
        out.extend_from_slice(&self.from.0.to_le_bytes());
        out.extend_from_slice(&self.leader.0.to_le_bytes());
        let ms = &self.members[..self.members.len().min(DIRECTORY_MEMBERS_MAX)];
        out.extend_from_slice(&(ms.len() as u16).to_le_bytes());
        for (m, learner) in ms {
            out.extend_from_slice(&m.id.0.to_le_bytes());
            out.push(u8::from(*learner));
            put_str(&mut out, &m.name);
            for urls in [&m.peer_urls, &m.client_urls] {
                let urls = &urls[..urls.len().min(16)];
                out.push(urls.len() as u8);
                for u in urls {
                    put_str(&mut out, u);
                }
            }
        }
        out
    }

    pub fn decode(mut b: &[u8]) -> Result<Directory, String> {
        let take = |b: &mut &[u8], n: usize| -> Result<Vec<u8>, String> {
            if b.len() < n {
                return Err("directory: truncated".into());
            }
            let (h, t) = b.split_at(n);
            *b = t;
            Ok(h.to_vec())
        };
        let cluster_id = u64::from_le_bytes(take(&mut b, 8)?.try_into().expect("8"));
        let from = NodeId(u64::from_le_bytes(take(&mut b, 8)?.try_into().expect("8")));
        let leader = NodeId(u64::from_le_bytes(take(&mut b, 8)?.try_into().expect("8")));
        let n = u16::from_le_bytes(take(&mut b, 2)?.try_into().expect("2")) as usize;
        if n > DIRECTORY_MEMBERS_MAX {
            return Err(format!("directory: {n} members over the limit"));
        }
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let id = NodeId(u64::from_le_bytes(take(&mut b, 8)?.try_into().expect("8")));
            let learner = match take(&mut b, 1)?[0] {
                0 => false,
                1 => true,
                x => return Err(format!("directory: bad learner flag {x}")),
            };
            let name = get_str(&mut b)?;
            let mut lists = [vec![], vec![]];
            for l in &mut lists {
                let k = take(&mut b, 1)?[0];
                for _ in 0..k {
                    l.push(get_str(&mut b)?);
                }
            }
            let [peer_urls, client_urls] = lists;
            members.push((
                Member {
                    id,
                    name,
                    peer_urls,
                    client_urls,
                },
                learner,
            ));
        }
        if !b.is_empty() {
            return Err(format!("directory: {} trailing bytes", b.len()));
        }
        Ok(Directory {
            cluster_id,
            from,
            leader,
            members,
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(1024);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = &s.as_bytes()[..end];
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s);
}

fn get_str(b: &mut &[u8]) -> Result<String, String> {
    if b.len() < 2 {
        return Err("attributes: truncated".into());
    }
    let n = u16::from_le_bytes([b[0], b[1]]) as usize;
    if b.len() < 2 + n {
        return Err("attributes: truncated".into());
    }
    let s = std::str::from_utf8(&b[2..2 + n]).map_err(|_| "attributes: not utf-8")?;
    *b = &b[2 + n..];
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_directories_round_trip_and_garbage_is_an_error() {
        let r = MemberRecord {
            name: "n4".into(),
            peer_urls: vec!["http://127.0.0.1:2480".into()],
        };
        let enc = r.encode();
        assert_eq!(MemberRecord::decode(&enc), Ok(r.clone()));
        for cut in 0..enc.len() {
            assert!(MemberRecord::decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            parse_record_key(&record_key(NodeId(0xabc))),
            Some(NodeId(0xabc))
        );
        assert_eq!(parse_record_key(b"member/xyz"), None);
        let ms = Members::new([Member {
            id: NodeId(1),
            name: "n1".into(),
            peer_urls: vec!["http://127.0.0.1:2380".into()],
            client_urls: vec!["http://127.0.0.1:2379".into()],
        }]);
        ms.apply_record(NodeId(4), &r);
        ms.set_conf(Configuration::with_learners([NodeId(1)], [NodeId(4)]));
        ms.set_leader(Some(NodeId(1)));
        let d = Directory::of(77, NodeId(1), &ms);
        assert!(d.from_leader());
        assert_eq!(d.members.len(), 2);
        assert!(d.members[1].1, "n4 is a learner");
        let enc = d.encode();
        assert_eq!(Directory::decode(&enc), Ok(d));
        for cut in 0..enc.len() {
            assert!(Directory::decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn the_list_follows_the_configuration_and_records_give_urls() {
        let ms = Members::new([1, 2].map(|i| Member {
            id: NodeId(i),
            name: format!("n{i}"),
            peer_urls: vec![format!("http://127.0.0.1:{}", 2380 + i)],
            client_urls: vec![],
        }));
        assert_eq!(
            ms.list().len(),
            2,
            "no configuration yet: every known member"
        );
        ms.set_conf(Configuration::with_learners(
            [NodeId(1), NodeId(2)],
            [NodeId(9)],
        ));
        let l = ms.list();
        assert_eq!(l.len(), 3);
        assert_eq!(l[2].name, "", "an added member that has not started");
        assert!(
            ms.peer_addrs(&Configuration::new([NodeId(1), NodeId(9)]))
                .len()
                == 1
        );
        let mut meta = BTreeMap::new();
        let rec = MemberRecord {
            name: String::new(),
            peer_urls: vec!["http://127.0.0.1:2409".into()],
        };
        meta.insert(record_key(NodeId(9)), rec.encode());
        meta.insert(Bytes::from_static(b"zzz"), Bytes::from_static(b"other"));
        ms.apply_records(&meta);
        let addrs = ms.peer_addrs(ms.conf.read().unwrap().as_ref().unwrap());
        assert_eq!(
            addrs.get(&NodeId(9)).map(String::as_str),
            Some("127.0.0.1:2409")
        );
        assert_eq!(
            ms.by_peer_url("http://127.0.0.1:2409/").map(|m| m.id),
            Some(NodeId(9))
        );
        ms.learn(
            NodeId(9),
            Attrs {
                name: "n9".into(),
                client_urls: vec!["http://127.0.0.1:2309".into()],
            },
        );
        assert_eq!(
            ms.get(NodeId(9)).unwrap().name,
            "n9",
            "named when it starts"
        );
        ms.set_conf(Configuration::new([NodeId(1)]));
        assert_eq!(ms.list().len(), 1, "removed members leave the list");
        assert!(!ms.is_member(NodeId(2)));
    }

    #[test]
    fn ids_are_stable_nonzero_and_distinct() {
        let a = member_id("tok", "n1");
        assert_eq!(a, member_id("tok", "n1"));
        assert_ne!(a, member_id("tok", "n2"));
        assert_ne!(a, member_id("other", "n1"));
        assert_ne!(a.0, 0);
        let c = cluster_id("tok", [a, member_id("tok", "n2")]);
        assert_eq!(c, cluster_id("tok", [member_id("tok", "n2"), a]));
        assert_ne!(c, cluster_id("tok", [a]));
    }

    #[test]
    fn attrs_round_trip_and_garbage_is_an_error() {
        let a = Attrs {
            name: "n1".into(),
            client_urls: vec!["http://127.0.0.1:2379".into(), "http://[::1]:2379".into()],
        };
        assert_eq!(Attrs::decode(&a.encode()), Ok(a.clone()));
        let enc = a.encode();
        for cut in 0..enc.len() {
            assert!(Attrs::decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = enc.clone();
        longer.push(1);
        assert!(Attrs::decode(&longer).is_err());
        assert!(Attrs::decode(&[1, 0, 0xff, 0]).is_err(), "invalid utf-8");
    }

    #[test]
    fn an_overlong_string_is_cut_at_a_character_boundary_and_still_decodes() {
        // 1 + 2·600 bytes: byte 1024 falls inside an 'é'; a cut there made the block invalid
        // UTF-8, which every peer refused (the fuzz target `peer_frame_decode` checks that a
        // decoded block re-encodes to one that decodes).
        let a = Attrs {
            name: format!("a{}", "é".repeat(600)),
            client_urls: vec![format!("http://{}", "ü".repeat(600))],
        };
        let got = Attrs::decode(&a.encode()).expect("the cut block decodes");
        assert_eq!(got.name, format!("a{}", "é".repeat(511)));
        assert!(a.name.starts_with(&got.name));
        assert!(a.client_urls[0].starts_with(&got.client_urls[0]));
        assert!(got.client_urls[0].len() <= 1024);
    }

    #[test]
    fn learning_fills_client_urls_of_known_members_only() {
        let ms = Members::new([Member {
            id: NodeId(7),
            name: "n1".into(),
            peer_urls: vec!["http://127.0.0.1:2380".into()],
            client_urls: vec![],
        }]);
        let attrs = |name: &str| Attrs {
            name: name.into(),
            client_urls: vec!["http://127.0.0.1:2379".into()],
        };
        ms.learn(NodeId(8), attrs("n2"));
        ms.learn(NodeId(7), attrs("impostor"));
        assert_eq!(ms.client_url(NodeId(7)), None);
        ms.learn(NodeId(7), attrs("n1"));
        assert_eq!(
            ms.client_url(NodeId(7)).as_deref(),
            Some("http://127.0.0.1:2379")
        );
        assert_eq!(ms.list().len(), 1);
    }

    #[test]
    fn the_admin_url_rides_after_the_attributes_and_old_blocks_still_decode() {
        let ms = Members::new([7, 8].map(|i| Member {
            id: NodeId(i),
            name: format!("n{i}"),
            peer_urls: vec![],
            client_urls: vec![],
        }));
        let a = Attrs {
            name: "n7".into(),
            client_urls: vec!["http://127.0.0.1:2379".into()],
        };
        assert_eq!(ms.encode_attrs(NodeId(7), &a), a.encode(), "none set");
        ms.set_admin_url(NodeId(7), "http://127.0.0.1:2381".into());
        let enc = ms.encode_attrs(NodeId(7), &a);
        assert!(
            Attrs::decode(&enc).is_err(),
            "the strict decoder sees extra bytes"
        );
        assert_eq!(
            Attrs::decode_with_admin(&enc),
            Ok((a.clone(), Some("http://127.0.0.1:2381".into())))
        );
        assert_eq!(Attrs::decode_with_admin(&a.encode()), Ok((a.clone(), None)));
        for cut in a.encode().len() + 1..enc.len() {
            assert!(
                Attrs::decode_with_admin(&enc[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let other = Members::new(ms.list());
        other.learn_encoded(NodeId(7), &enc).unwrap();
        assert_eq!(
            other.admin_url(NodeId(7)).as_deref(),
            Some("http://127.0.0.1:2381")
        );
        assert_eq!(
            other.client_url(NodeId(7)).as_deref(),
            Some("http://127.0.0.1:2379")
        );
        other.learn_encoded(NodeId(8), &enc).unwrap();
        assert_eq!(
            other.admin_url(NodeId(8)),
            None,
            "another member's name: ignored"
        );
    }
}
