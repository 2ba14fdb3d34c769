//! Broadcasts: when a broadcast's time comes, each member of its segment is signalled once, through the
//! broadcast's own flow (`broadcast-<id>`, triggered by the signal of that name, entered at most once). The
//! flow does the sending, so policies, caps, quiet hours, the outbox and the delivery history apply as to any
//! flow's action.
//!
//! Like a backfill, a broadcast takes [`CHUNK`] members per batch when the batch leaves room, in profile id
//! order, its cursor committed with the runs it started; a restart resumes, and a member is never signalled
//! twice to different effect (the flow enters a profile once). A broadcast cancelled stops at its next chunk.

use serde_json::json;
use tutti_core::Millis;

use super::backfill::CHUNK;
use super::{InputId, Pending, Processor, ProcessorError, State};

impl Processor {
    /// Takes the next chunk of the oldest due broadcast. Returns whether any due broadcast has more to do.
    pub(super) fn broadcast_chunk(
        &self,
        state: &mut State,
        pending: &mut Pending,
        now: Millis,
    ) -> Result<bool, ProcessorError> {
        let due: Vec<_> = self.store.open_broadcasts()?.into_iter().filter(|b| b.send_at <= now).collect();
        let Some(mut broadcast) = due.iter().min_by_key(|b| (b.send_at, b.created_at)).cloned() else {
            return Ok(false);
        };
        if broadcast.status == "scheduled" {
            broadcast.status = "sending".into();
            broadcast.total = self.store.member_count(&broadcast.segment)?;
        }
        let signal = format!("broadcast-{}", broadcast.id);
        let payload = json!({"broadcast": broadcast.id, "name": broadcast.name});
        let members = self.store.members_after(&broadcast.segment, broadcast.next_profile, CHUNK)?;
        for pid in &members {
            let input = tutti_flows::Input::Signal { name: &signal, payload: &payload };
            self.flow_input(state, pending, *pid, input, InputId::Broadcast(broadcast.id.clone(), *pid), now)?;
            broadcast.next_profile = pid.0;
            broadcast.done += 1;
        }
        if members.len() < CHUNK {
            broadcast.status = "sent".into();
            broadcast.finished_at = Some(now);
            tracing::info!(broadcast = %broadcast.id, members = broadcast.done, "broadcast sent");
        }
        let more = broadcast.finished_at.is_none() || due.len() > 1;
        pending.batch.flows.broadcasts.push(broadcast);
        Ok(more)
    }
}
