//! The backend calls around a connection's life, as xxim's conn service makes them:
//! `AfterConnect{connParam, connectedAt}` retried until it succeeds or the connection ends, and
//! `AfterDisconnect{connParam, connectedAt, disconnectedAt}` (times in ms) once it is gone,
//! tied to no connection and retried `retry_attempts` times.

use super::{
    backend::{self, Failure},
    params::Params,
    pb::{AfterConnectReq, AfterDisconnectReq},
    Im,
};
use crate::{
    engine::{conn::ConnKey, shard::Shard},
    hook::event::now_ms,
};
use prost::Message;
use std::{rc::Rc, time::Duration};

/// Calls AfterConnect for a new connection until it succeeds or the connection closes.
pub fn after_connect(im: &Rc<Im>, shard: &Rc<Shard>, key: ConnKey, params: &Params, at: u64) {
    let Some(backend) = im.im().after_connect.clone() else { return };
    let message = AfterConnectReq {
        conn_param: Some(params.conn_param(&im.im().pod_ip)),
        connected_at: at.to_string(),
    };
    let message: bytes::Bytes = message.encode_to_vec().into();
    let path = backend.path.clone().unwrap_or_else(|| "/pb.imService/AfterConnect".into());
    let wait = Duration::from_millis(im.im().retry_interval_ms);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        loop {
            let call = backend::request(&backend, &path, message.clone());
            match backend::outcome(shard.call(key, call).await, backend.protocol) {
                Ok(_) | Err(Failure::Gone) => return,
                Err(e) => tracing::warn!("im: AfterConnect failed, retrying: {e}"),
            }
            glommio::timer::sleep(wait).await;
            if !shard.is_open(key) {
                return;
            }
        }
    })
    .detach();
}

/// Calls AfterDisconnect for a connection that has gone.
pub fn after_disconnect(im: &Rc<Im>, shard: &Rc<Shard>, params: &Params, connected: u64) {
    let Some(backend) = im.im().after_disconnect.clone() else { return };
    let message = AfterDisconnectReq {
        conn_param: Some(params.conn_param(&im.im().pod_ip)),
        connected_at: connected.to_string(),
        disconnected_at: now_ms().to_string(),
    };
    let message: bytes::Bytes = message.encode_to_vec().into();
    let path = backend.path.clone().unwrap_or_else(|| "/pb.imService/AfterDisconnect".into());
    let (attempts, wait) =
        (im.im().retry_attempts, Duration::from_millis(im.im().retry_interval_ms));
    let shard = shard.clone();
    glommio::spawn_local(async move {
        for attempt in 0..=attempts {
            if attempt > 0 {
                glommio::timer::sleep(wait).await;
            }
            let call = backend::request(&backend, &path, message.clone());
            match backend::outcome(shard.call_detached(call).await, backend.protocol) {
                Ok(_) => return,
                Err(Failure::Refused(e)) => {
                    return tracing::warn!("im: AfterDisconnect refused: {e}")
                }
                Err(e) => tracing::warn!("im: AfterDisconnect failed (attempt {attempt}): {e}"),
            }
        }
    })
    .detach();
}
