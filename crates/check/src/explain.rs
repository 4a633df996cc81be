//! Explanations: why one key's history is not linearizable, in words a person can act on.
//!
//! Owns: turning the search's longest linearizable prefix into text that names the operation
//! that could not be placed (client, input, output, call/return times), what the model held
//! at that point, the operations that were candidates to come next, and the writes that
//! matter (the prefix's last write, the same client's earlier write, who wrote the value a
//! read returned).
//!
//! Must never: search (it replays only the prefix it is given), or decide the verdict.

use std::fmt::Write as _;

use crate::history::Operation;
use crate::model::{Input, KeyState, Output, ShowBytes};

/// How many operations of the prefix are listed (the last ones).
const PREFIX_SHOWN_MAX: usize = 8;
/// How many completed operations (in return order) are considered for the first line.
const HEADLINE_SCAN_MAX: usize = 32;
/// How many writers of a returned value (or appends it may end with) are listed.
const WRITERS_SHOWN_MAX: usize = 4;

/// One key's operations as the checker saw them: `ops[i]` is `history[index[i]]`.
pub(crate) struct KeyOps<'h> {
    pub key: &'h [u8],
    pub ops: Vec<&'h Operation>,
    pub index: Vec<usize>,
}

impl KeyOps<'_> {
    fn line(&self, i: usize) -> String {
        OpLine(self.index[i], self.ops[i]).to_string()
    }
}

/// `#12 Get("x") by client 3 at [120, 130] -> "b"`.
pub(crate) struct OpLine<'a>(pub usize, pub &'a Operation);

impl std::fmt::Display for OpLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let OpLine(index, op) = *self;
        write!(f, "#{index} {} by client {}", op.input, op.client)?;
        match (&op.output, op.ret) {
            (Some(output), Some(ret)) => write!(f, " at [{}, {ret}] -> {output}", op.call),
            _ => write!(f, " at [{}, never returned]", op.call),
        }
    }
}

/// Explains why no operation can follow the prefix `order` (whose model state is `state`).
pub(crate) fn explain(key_ops: &KeyOps<'_>, order: &[usize], state: &KeyState) -> String {
    let ops = &key_ops.ops;
    let key = ShowBytes(key_ops.key);
    let mut done = vec![false; ops.len()];
    for &i in order {
        done[i] = true;
    }
    let (order, state) = &extend(key_ops, order.to_vec(), state.clone(), &mut done);
    // The completed operations left, by return: the first one blocks (everything linearized
    // next must be invoked before it returned, and it must be among them).
    let mut left: Vec<usize> = (0..ops.len())
        .filter(|&i| !done[i] && ops[i].ret.is_some())
        .collect();
    left.sort_by_key(|&i| (ops[i].ret, i));
    let blocking = *left
        .first()
        .expect("an illegal history has a completed operation left");
    let deadline = ops[blocking].ret.expect("completed");
    // Name the first of them that the model refuses right after the prefix.
    let refused = left
        .iter()
        .take(HEADLINE_SCAN_MAX)
        .copied()
        .find(|&i| Some(&state.apply(&ops[i].input).1) != ops[i].output.as_ref());
    let mut text = match refused {
        Some(i) => headline(key_ops, i, state),
        None => format!(
            "{} cannot be linearized: after the longest linearizable prefix ({}) no order of \
             the operations around it satisfies them all\n",
            who(ops[blocking]),
            holds(key_ops.key, state)
        ),
    };
    let pending = ops.iter().filter(|op| op.ret.is_none()).count();
    let _ = writeln!(
        text,
        "  the longest linearizable prefix orders {} of the {} operations on {key} \
         ({pending} never returned){}",
        order.len(),
        ops.len(),
        if order.is_empty() {
            ""
        } else {
            ", ending with:"
        }
    );
    let shown = order.len().saturating_sub(PREFIX_SHOWN_MAX);
    if shown > 0 {
        let _ = writeln!(text, "    … {shown} earlier operations");
    }
    for &i in &order[shown..] {
        let _ = writeln!(text, "    {}", key_ops.line(i));
    }
    let _ = writeln!(text, "  after it {}", holds(key_ops.key, state));
    if let Some(&last) = order.iter().rev().find(|&&i| ops[i].input.may_write()) {
        let _ = writeln!(text, "  last write in the prefix: {}", key_ops.line(last));
    }
    let _ = writeln!(
        text,
        "  candidates to come next (invoked by {deadline}, when #{} returned):",
        key_ops.index[blocking]
    );
    for i in (0..ops.len()).filter(|&i| !done[i] && ops[i].call <= deadline) {
        let _ = writeln!(text, "    {}{}", key_ops.line(i), verdict(ops[i], state));
    }
    conflicts(key_ops, refused.unwrap_or(blocking), &mut text);
    text.truncate(text.trim_end().len());
    text
}

/// Extends the prefix greedily with completed operations the model accepts, earliest
/// return first, while they may come next. The search stops at the last prefix from which
/// it saw a way forward (its lookahead cuts dead ends early); for a person the prefix that
/// runs up to the operation that actually fails reads better, and it is linearizable too.
fn extend(
    key_ops: &KeyOps<'_>,
    mut order: Vec<usize>,
    mut state: KeyState,
    done: &mut [bool],
) -> (Vec<usize>, KeyState) {
    let ops = &key_ops.ops;
    loop {
        let mut left: Vec<usize> = (0..ops.len())
            .filter(|&i| !done[i] && ops[i].ret.is_some())
            .collect();
        left.sort_by_key(|&i| (ops[i].ret, i));
        let Some(&first) = left.first() else {
            return (order, state);
        };
        let deadline = ops[first].ret;
        let next = left
            .iter()
            .copied()
            .filter(|&i| Some(ops[i].call) <= deadline)
            .find(|&i| Some(&state.apply(&ops[i].input).1) == ops[i].output.as_ref());
        let Some(i) = next else {
            return (order, state);
        };
        state = state.apply(&ops[i].input).0;
        done[i] = true;
        order.push(i);
    }
}

/// Explains an observed value that no write of the key could build.
pub(crate) fn explain_unproducible(key_ops: &KeyOps<'_>, i: usize) -> String {
    let op = key_ops.ops[i];
    let output = op.output.as_ref().expect("an observer returned");
    let key = ShowBytes(key_ops.key);
    let count = |f: fn(&Input) -> bool| key_ops.ops.iter().filter(|op| f(&op.input)).count();
    let mut text = format!(
        "{} returned {output}, but no write on {key} could have produced it: no Put or Cas \
         wrote that value and no sequence of the key's appends builds it\n",
        who(op)
    );
    let _ = writeln!(
        text,
        "  writes on {key}: {} Put, {} Cas, {} Append, {} Delete (of {} operations)",
        count(|input| matches!(input, Input::Put { .. })),
        count(|input| matches!(input, Input::Cas { .. })),
        count(|input| matches!(input, Input::Append { .. })),
        count(|input| matches!(input, Input::Delete { .. })),
        key_ops.ops.len()
    );
    let _ = write!(text, "  the operation: {}", key_ops.line(i));
    text
}

/// `Get("x") by client 3 at [120, 130]`.
fn who(op: &Operation) -> String {
    match op.ret {
        Some(ret) => format!(
            "{} by client {} at [{}, {ret}]",
            op.input, op.client, op.call
        ),
        None => format!(
            "{} by client {} at [{}, never returned]",
            op.input, op.client, op.call
        ),
    }
}

/// The first line: an operation the model refuses after the prefix, what it returned and
/// what the model expected.
fn headline(key_ops: &KeyOps<'_>, i: usize, state: &KeyState) -> String {
    let op = key_ops.ops[i];
    let output = op.output.as_ref().expect("a completed operation");
    let who = who(op);
    let (_, expected) = state.apply(&op.input);
    let prefix_state = holds(key_ops.key, state);
    if let Input::Get { .. } = op.input {
        format!("{who} returned {output}, but the longest linearizable prefix has {prefix_state}\n")
    } else if kind_matches(&op.input, output) {
        format!(
            "{who} returned {output}, but the longest linearizable prefix has {prefix_state}, \
             where the model returns {expected}\n"
        )
    } else {
        format!(
            "{who} returned {output}, which no {} can return\n",
            kind(&op.input)
        )
    }
}

/// `"x" = "a"` or `"x" absent`.
fn holds(key: &[u8], state: &KeyState) -> String {
    match &state.0 {
        Some(value) => format!("{} = {}", ShowBytes(key), ShowBytes(value)),
        None => format!("{} absent", ShowBytes(key)),
    }
}

/// Why the model refuses (or would accept) this operation right after the prefix.
fn verdict(op: &Operation, state: &KeyState) -> String {
    let (after, expected) = state.apply(&op.input);
    match &op.output {
        Some(output) if *output != expected => format!(" — the model returns {expected}"),
        _ => format!(" — allowed (leaves {after}), but no order of the rest follows"),
    }
}

/// The writes that bear on the blocking operation.
fn conflicts(key_ops: &KeyOps<'_>, blocking: usize, text: &mut String) {
    let ops = &key_ops.ops;
    let op = ops[blocking];
    if let Some(own) = (0..ops.len())
        .filter(|&i| ops[i].client == op.client && ops[i].input.may_write())
        .filter(|&i| ops[i].ret.is_some_and(|ret| ret < op.call))
        .max_by_key(|&i| ops[i].ret)
    {
        let _ = writeln!(
            text,
            "  the same client's last write before it: {}",
            key_ops.line(own)
        );
    }
    let (Input::Get { .. }, Some(Output::Value(Some(value)))) = (&op.input, &op.output) else {
        return;
    };
    let writers: Vec<usize> = (0..ops.len())
        .filter(|&i| match &ops[i].input {
            Input::Put { value: v, .. } | Input::Cas { new: v, .. } => v == value,
            _ => false,
        })
        .collect();
    if !writers.is_empty() {
        list(
            key_ops,
            &format!("operations that wrote {}:", ShowBytes(value)),
            &writers,
            text,
        );
        return;
    }
    let _ = writeln!(
        text,
        "  no Put or Cas on {} wrote {}",
        ShowBytes(key_ops.key),
        ShowBytes(value)
    );
    let enders: Vec<usize> = (0..ops.len())
        .filter(|&i| match &ops[i].input {
            Input::Append { suffix, .. } => !suffix.is_empty() && value.ends_with(suffix),
            _ => false,
        })
        .collect();
    if !enders.is_empty() {
        list(key_ops, "appends it could end with:", &enders, text);
    }
}

/// Lists a few operations under a heading.
fn list(key_ops: &KeyOps<'_>, heading: &str, ops: &[usize], text: &mut String) {
    let _ = writeln!(text, "  {heading}");
    for &i in ops.iter().take(WRITERS_SHOWN_MAX) {
        let _ = writeln!(text, "    {}", key_ops.line(i));
    }
    if ops.len() > WRITERS_SHOWN_MAX {
        let _ = writeln!(text, "    … {} more", ops.len() - WRITERS_SHOWN_MAX);
    }
}

fn kind(input: &Input) -> &'static str {
    match input {
        Input::Get { .. } => "Get",
        Input::Put { .. } => "Put",
        Input::Append { .. } => "Append",
        Input::Delete { .. } => "Delete",
        Input::Cas { .. } => "Cas",
    }
}

fn kind_matches(input: &Input, output: &Output) -> bool {
    matches!(
        (input, output),
        (Input::Get { .. }, Output::Value(_))
            | (Input::Put { .. } | Input::Append { .. }, Output::Written)
            | (Input::Delete { .. }, Output::Deleted(0 | 1))
            | (Input::Cas { .. }, Output::Cas { .. })
    )
}
