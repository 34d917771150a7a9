//! The receiving side of the mesh: one task per peer ring, applying what other shards send.
//! Replies are sent from their own tasks so a receiving loop never waits on a full ring.

use super::Shard;
use crate::{bus::ShardMsg, fanout};
use glommio::channels::channel_mesh::Receivers;
use std::rc::Rc;

pub fn listen(shard: &Rc<Shard>, mut receivers: Receivers<ShardMsg>) {
    for (_, ring) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = ring.recv().await {
                apply(&shard, msg);
            }
        })
        .detach();
    }
}

fn apply(shard: &Rc<Shard>, msg: ShardMsg) {
    match msg {
        ShardMsg::Publish(publication) => {
            fanout::deliver_local(shard, &publication);
        }
        ShardMsg::StatsRequest { from, request } => {
            let stats = shard.local_stats();
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let _ = shard
                    .bus
                    .send_to(from, ShardMsg::StatsReply { request, stats })
                    .await;
            })
            .detach();
        }
        ShardMsg::StatsReply { request, stats } => shard.bus.deliver_reply(request, stats),
    }
}
