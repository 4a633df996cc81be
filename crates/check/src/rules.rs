//! The model compiled for the search: interned states and one transition rule per operation.
//!
//! Owns: [`States`] (every value the search meets gets a small id; id 0 is "absent", so
//! equal values have equal ids and the search compares ids, never bytes) and [`Rules`] (each
//! operation's transition together with the check of its recorded output; an operation that
//! never returned accepts whatever the model would return).
//!
//! This is a second spelling of [`KeyState::apply`], for speed; a test holds the two to the
//! same answers on every input, state and output.
//!
//! Must never: know about time, the event order or the memo; read a clock; use randomness.

use std::collections::HashMap;
use std::rc::Rc;

use crate::history::Operation;
use crate::model::{Input, KeyState, Output};

/// An interned model state.
pub(crate) type StateId = u32;
/// The key is absent (the initial state).
pub(crate) const ABSENT: StateId = 0;

/// Interned model states: id 0 is "absent", every other id one distinct value.
pub(crate) struct States {
    values: Vec<Rc<[u8]>>,
    ids: HashMap<Rc<[u8]>, StateId>,
}

impl States {
    fn new() -> Self {
        States {
            values: vec![Rc::from(&[][..])],
            ids: HashMap::new(),
        }
    }

    pub(crate) fn intern(&mut self, value: Option<&[u8]>) -> StateId {
        let Some(value) = value else { return ABSENT };
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = StateId::try_from(self.values.len()).expect("fewer than 2^32 model states");
        let value: Rc<[u8]> = Rc::from(value);
        self.values.push(value.clone());
        self.ids.insert(value, id);
        id
    }

    /// The value of state `id`, `None` when absent.
    pub(crate) fn value(&self, id: StateId) -> Option<&[u8]> {
        (id != ABSENT).then(|| &*self.values[id as usize])
    }

    pub(crate) fn state(&self, id: StateId) -> KeyState {
        KeyState((id != ABSENT).then(|| self.values[id as usize].to_vec()))
    }
}

/// One operation's transition plus the check of its recorded output (`None`: any output).
#[derive(Debug)]
enum Rule {
    Read {
        want: Option<StateId>,
    },
    Set {
        to: StateId,
    },
    Append {
        suffix: Box<[u8]>,
    },
    Delete {
        present: Option<bool>,
    },
    Cas {
        expect: StateId,
        to: StateId,
        succeeded: Option<bool>,
    },
    /// The recorded output cannot come from this kind of input.
    Never,
}

/// The compiled operations of one key, indexed like the slice they were compiled from.
pub(crate) struct Rules {
    rules: Vec<Rule>,
    pub(crate) states: States,
    /// Append transitions already computed: (operation, state before) → state after.
    appended: HashMap<(u32, StateId), StateId>,
}

impl Rules {
    pub(crate) fn compile(ops: &[&Operation]) -> Self {
        let mut states = States::new();
        let rules = ops.iter().map(|op| compile(op, &mut states)).collect();
        Rules {
            rules,
            states,
            appended: HashMap::new(),
        }
    }

    /// The state after operation `op` from `state`, or `None` if its recorded output
    /// contradicts the model.
    pub(crate) fn apply(&mut self, op: u32, state: StateId) -> Option<StateId> {
        match &self.rules[op as usize] {
            Rule::Read { want } => want.is_none_or(|want| want == state).then_some(state),
            Rule::Set { to } => Some(*to),
            Rule::Append { suffix } => {
                if let Some(&after) = self.appended.get(&(op, state)) {
                    return Some(after);
                }
                let mut value = Vec::new();
                if state != ABSENT {
                    value.extend_from_slice(&self.states.values[state as usize]);
                }
                value.extend_from_slice(suffix);
                let after = self.states.intern(Some(&value));
                self.appended.insert((op, state), after);
                Some(after)
            }
            Rule::Delete { present } => match present {
                Some(present) if *present != (state != ABSENT) => None,
                _ => Some(ABSENT),
            },
            Rule::Cas {
                expect,
                to,
                succeeded,
            } => {
                let holds = state == *expect;
                if succeeded.is_some_and(|s| s != holds) {
                    return None;
                }
                Some(if holds { *to } else { state })
            }
            Rule::Never => None,
        }
    }
}

fn compile(op: &Operation, states: &mut States) -> Rule {
    let output = op.output.as_ref();
    match (&op.input, output) {
        (Input::Get { .. }, Some(Output::Value(value))) => Rule::Read {
            want: Some(states.intern(value.as_deref())),
        },
        // A pending read has no effect and any output: it constrains nothing.
        (Input::Get { .. }, None) => Rule::Read { want: None },
        (Input::Put { value, .. }, None | Some(Output::Written)) => Rule::Set {
            to: states.intern(Some(value)),
        },
        (Input::Append { suffix, .. }, None | Some(Output::Written)) => Rule::Append {
            suffix: suffix.clone().into_boxed_slice(),
        },
        (Input::Delete { .. }, None) => Rule::Delete { present: None },
        (Input::Delete { .. }, Some(&Output::Deleted(count))) if count <= 1 => Rule::Delete {
            present: Some(count == 1),
        },
        (Input::Cas { expected, new, .. }, None | Some(Output::Cas { .. })) => Rule::Cas {
            expect: states.intern(expected.as_deref()),
            to: states.intern(Some(new)),
            succeeded: match output {
                Some(&Output::Cas { succeeded }) => Some(succeeded),
                _ => None,
            },
        },
        _ => Rule::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled rules and `KeyState::apply` are two spellings of one model: they must
    /// agree on every input, state and output.
    #[test]
    fn compiled_rules_agree_with_the_model() {
        let values: [Option<&[u8]>; 3] = [None, Some(b"a"), Some(b"ab")];
        let inputs = [
            Input::get("k"),
            Input::put("k", "a"),
            Input::append("k", "b"),
            Input::delete("k"),
            Input::cas("k", None, "a"),
            Input::cas("k", Some(b"a"), "ab"),
        ];
        let outputs = [
            None,
            Some(Output::absent()),
            Some(Output::value("a")),
            Some(Output::value("ab")),
            Some(Output::Written),
            Some(Output::Deleted(0)),
            Some(Output::Deleted(1)),
            Some(Output::Deleted(2)),
            Some(Output::Cas { succeeded: true }),
            Some(Output::Cas { succeeded: false }),
        ];
        for value in values {
            for input in &inputs {
                for output in &outputs {
                    let model = KeyState(value.map(<[u8]>::to_vec));
                    let (after, returns) = model.apply(input);
                    let expected = match output {
                        Some(out) if *out != returns => None,
                        _ => Some(after),
                    };
                    let op = Operation {
                        client: 0,
                        input: input.clone(),
                        output: output.clone(),
                        call: 0,
                        ret: output.as_ref().map(|_| 1),
                    };
                    let mut rules = Rules::compile(&[&op]);
                    let from = rules.states.intern(value);
                    let got = rules.apply(0, from).map(|id| rules.states.state(id));
                    assert_eq!(got, expected, "{input} from {model} returning {output:?}");
                    // A second application hits the append cache and must agree.
                    let again = rules.apply(0, from).map(|id| rules.states.state(id));
                    assert_eq!(again, expected);
                }
            }
        }
    }
}
