//! The receiving side of the mesh: one task per peer ring, applying what other shards send.
//! Questions are answered from tasks of their own so a receiving loop never waits on a ring.

use super::{bus::ShardMsg, fanout, shard::Shard};
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
        ShardMsg::Ask { from, request, query } => {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let answer = shard.answer(query).await;
                shard.bus.send_to(from, ShardMsg::Answer { request, answer }).await;
            })
            .detach();
        }
        ShardMsg::Answer { request, answer } => shard.bus.deliver_answer(request, answer),
        ShardMsg::Tell(notice) => shard.apply_notice(notice),
    }
}
