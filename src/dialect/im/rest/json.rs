//! The push API's JSON bodies, in proto3's JSON mapping (camelCase names, `bytes` as base64,
//! enums as names or numbers), so a backend can send what grpc-gateway would.

use crate::dialect::im::{
    messages::Filter,
    pb::{notice_data, ConnParam, NoticeData},
};
use base64::{engine::general_purpose, Engine};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `GetUserConnReq` (also the filter of `SendMsg` and `KickUserConn`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FilterJson {
    pub user_ids: Vec<String>,
    pub platforms: Vec<String>,
    pub devices: Vec<String>,
}

impl From<FilterJson> for Filter {
    fn from(f: FilterJson) -> Filter {
        Filter { user_ids: f.user_ids, platforms: f.platforms, devices: f.devices }
    }
}

/// `SendMsgReq`, with the filter's lists at the top level or in `getUserConnReq`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendMsgJson {
    pub get_user_conn_req: Option<FilterJson>,
    pub user_ids: Vec<String>,
    pub platforms: Vec<String>,
    pub devices: Vec<String>,
    pub event: Option<serde_json::Value>,
    pub data: String,
    /// Answer `successCount` instead of `successConnParams` (pushgate's own: a push to a big
    /// conversation then costs no list of its connections).
    pub only_failed: bool,
}

impl SendMsgJson {
    pub fn filter(&mut self) -> Filter {
        match self.get_user_conn_req.take() {
            Some(f) => f.into(),
            None => Filter {
                user_ids: std::mem::take(&mut self.user_ids),
                platforms: std::mem::take(&mut self.platforms),
                devices: std::mem::take(&mut self.devices),
            },
        }
    }
}

/// `KickUserConnReq`: the filter, at the top level or in `getUserConnReq`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KickJson {
    pub get_user_conn_req: Option<FilterJson>,
    #[serde(flatten)]
    pub filter: FilterJson,
}

/// `SendNoticeDataReq`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendNoticeJson {
    pub notice_data: NoticeJson,
    pub user_id: Option<String>,
    pub is_broadcast: Option<bool>,
}

/// `NoticeData`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NoticeJson {
    pub conv_id: String,
    pub unread_count: i32,
    pub unread_absolute: bool,
    pub notice_id: String,
    pub create_time: String,
    pub title: String,
    pub content_type: i32,
    pub content: String,
    pub options: NoticeOptionsJson,
    pub ext: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NoticeOptionsJson {
    pub storage_for_client: bool,
    pub update_conv_msg: bool,
    pub online_push_once: bool,
}

impl NoticeJson {
    pub fn into_pb(self) -> Result<NoticeData, String> {
        Ok(NoticeData {
            conv_id: self.conv_id,
            unread_count: self.unread_count,
            unread_absolute: self.unread_absolute,
            notice_id: self.notice_id,
            create_time: self.create_time,
            title: self.title,
            content_type: self.content_type,
            content: base64(&self.content, "noticeData.content")?.into(),
            options: Some(notice_data::Options {
                storage_for_client: self.options.storage_for_client,
                update_conv_msg: self.options.update_conv_msg,
                online_push_once: self.options.online_push_once,
            }),
            ext: base64(&self.ext, "noticeData.ext")?.into(),
        })
    }
}

/// `{convId, add[], remove[]}`: members of a conversation.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MembersJson {
    pub conv_id: String,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

/// `ConnParam` as JSON, borrowed from the home's table.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnParamJson<'a> {
    pub user_id: &'a str,
    pub token: &'a str,
    pub device_id: &'a str,
    pub platform: &'a str,
    pub ips: &'a str,
    pub network_used: &'a str,
    pub headers: &'a HashMap<String, String>,
    pub pod_ip: &'a str,
    pub device_model: &'a str,
    pub os_version: &'a str,
    pub app_version: &'a str,
    pub language: &'a str,
}

impl<'a> From<&'a ConnParam> for ConnParamJson<'a> {
    fn from(p: &'a ConnParam) -> ConnParamJson<'a> {
        ConnParamJson {
            user_id: &p.user_id,
            token: &p.token,
            device_id: &p.device_id,
            platform: &p.platform,
            ips: &p.ips,
            network_used: &p.network_used,
            headers: &p.headers,
            pod_ip: &p.pod_ip,
            device_model: &p.device_model,
            os_version: &p.os_version,
            app_version: &p.app_version,
            language: &p.language,
        }
    }
}

/// Base64 text (standard or URL-safe, padded or not) as bytes.
pub fn base64(text: &str, field: &str) -> Result<Vec<u8>, String> {
    let text = text.trim_end_matches('=');
    general_purpose::STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| general_purpose::URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| format!("{field} must be base64"))
}

/// `PushEvent` by name or number.
pub fn push_event(value: Option<&serde_json::Value>) -> Result<i32, String> {
    match value {
        None => Ok(0),
        Some(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(e @ 0..=2) => Ok(e as i32),
            _ => Err("event must be 0, 1 or 2".into()),
        },
        Some(serde_json::Value::String(name)) => match name.as_str() {
            "PushMsgDataList" => Ok(0),
            "PushNoticeDataList" => Ok(1),
            "PushResponseBody" => Ok(2),
            _ => Err(format!("unknown event {name:?}")),
        },
        Some(_) => Err("event must be a number or a name".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_any_alphabet_and_events_by_name() {
        assert_eq!(base64("aGk=", "d"), Ok(b"hi".to_vec()));
        assert_eq!(base64("-_8", "d"), Ok(vec![0xfb, 0xff]));
        assert!(base64("***", "d").is_err());
        assert_eq!(push_event(Some(&serde_json::json!("PushNoticeDataList"))), Ok(1));
        assert_eq!(push_event(Some(&serde_json::json!(2))), Ok(2));
        assert!(push_event(Some(&serde_json::json!(9))).is_err());
    }

    #[test]
    fn send_msg_takes_the_filter_from_either_place() {
        let mut top: SendMsgJson =
            serde_json::from_str(r#"{"userIds":["a"],"data":"aGk="}"#).expect("parse");
        assert_eq!(top.filter().user_ids, vec!["a".to_string()]);
        let mut nested: SendMsgJson =
            serde_json::from_str(r#"{"getUserConnReq":{"platforms":["ios"]}}"#).expect("parse");
        assert_eq!(nested.filter().platforms, vec!["ios".to_string()]);
    }
}
