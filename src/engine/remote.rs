//! What the other nodes send this shard, in cluster mode: publications on the topics this node
//! follows (delivered to this shard's subscribers only: the cluster thread hands each one to
//! every shard), dialects' broadcasts and questions, node and link changes, and the periodic
//! check of this shard's topic interest against the cluster thread's.

use super::{
    bus::{PubItem, Publication},
    fanout,
    shard::Shard,
};
use crate::{
    cluster::{interest::digest, FromCluster},
    hook::event::EmqxKind,
};
use std::{rc::Rc, time::Duration};

/// Listens on this shard's channel from the cluster thread, and checks interest drift.
pub fn listen(shard: &Rc<Shard>, from_cluster: flume::Receiver<FromCluster>, every: Duration) {
    let listener = shard.clone();
    glommio::spawn_local(async move {
        while let Ok(msg) = from_cluster.recv_async().await {
            apply(&listener, msg);
        }
    })
    .detach();
    let checker = shard.clone();
    glommio::spawn_local(async move {
        while !checker.shutting_down.get() {
            glommio::timer::sleep(every).await;
            let Some(link) = &checker.cluster else { return };
            let (count, hash) = {
                let all = followed(&checker);
                digest(all.iter().map(|(ns, name)| (*ns, &**name)))
            };
            link.digest(count, hash);
        }
    })
    .detach();
}

fn apply(shard: &Rc<Shard>, msg: FromCluster) {
    let Some(link) = &shard.cluster else { return };
    match msg {
        FromCluster::Publish { ns, topic, frame, exclude } => {
            let dialect = shard.tag_of_ns(ns).and_then(|tag| shard.dialect(tag)).cloned();
            if dialect.as_ref().is_some_and(|d| d.on_node_publish(shard, &topic, &frame)) {
                return;
            }
            let exclude = exclude.zip(dialect).and_then(|(id, d)| d.addr_of_client(&id));
            let report = shard.hooks.wants_emqx(EmqxKind::MessageDelivered, Some(&topic));
            let item =
                PubItem { topic: (*topic).into(), frame, exclude, exclude_elsewhere: None, report };
            fanout::deliver_local(shard, &Publication { ns, items: vec![item] });
        }
        FromCluster::Broadcast { tag, node, body } => {
            if let Some(dialect) = shard.dialect(tag).cloned() {
                dialect.on_cluster(shard, &node, body);
            }
        }
        FromCluster::Question { tag, node, inbox, body } => {
            let Some(dialect) = shard.dialect(tag).cloned() else { return };
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let answer = dialect.answer_node(&shard, &node, body).await;
                if let Some(link) = &shard.cluster {
                    link.reply(inbox, answer);
                }
            })
            .detach();
        }
        FromCluster::Answers { id, answers, complete } => link.answered(id, (answers, complete)),
        FromCluster::Nodes { up, gone, live } => {
            link.set_live(live.clone());
            for tag in 0..=u8::MAX {
                let Some(dialect) = shard.dialect(tag).cloned() else { break };
                dialect.on_nodes(shard, &up, &gone, &live);
            }
        }
        FromCluster::Link { up } => {
            link.set_up(up);
            for tag in 0..=u8::MAX {
                let Some(dialect) = shard.dialect(tag).cloned() else { break };
                dialect.on_link(shard, up);
            }
        }
        FromCluster::Resync => link.topics(followed(shard)),
    }
}

/// Every topic this shard follows: the engine's topics and those dialects follow themselves.
fn followed(shard: &Shard) -> Vec<(u16, Box<str>)> {
    let mut all = shard.state.borrow().topics.all();
    for tag in 0..=u8::MAX {
        let Some(dialect) = shard.dialect(tag) else { break };
        all.extend(dialect.node_topics(shard));
    }
    all
}
