//! Leadership transfer (dissertation §3.10).
//!
//! Owns: choosing to hand over, catching the target up, sending `TimeoutNow` once its log is
//! current, and giving up after an election timeout. Must never: accept proposals while a
//! transfer is in progress (they could be lost by the handover).

use crate::error::TransferError;
use crate::message::MessageBody;
use crate::node::Raft;
use crate::ready::Role;
use crate::types::NodeId;

impl Raft {
    pub(crate) fn start_transfer(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader_hint: self.leader(),
            });
        }
        if to == self.id {
            return Err(TransferError::AlreadyLeader);
        }
        if !self.conf.contains(to) {
            return Err(TransferError::UnknownTarget(to));
        }
        if self.transferee == to {
            return Ok(()); // already under way
        }
        self.transferee = to;
        self.transfer_elapsed = 0;
        if self.progress[&to].matched == self.log.last_index() {
            self.send(to, MessageBody::TimeoutNow);
        } else {
            self.send_append(to, true);
        }
        Ok(())
    }
}
