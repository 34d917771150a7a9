//! Pusher's close-code catalog, with what each code asks a client to do. Keeping them in one
//! place makes the reconnect behaviour of the protocol reviewable.

use crate::engine::conn::Close;

/// A WebSocket close code the Pusher dialect sends, named for why it is sent.
///
/// Pusher's ranges: 4000-4099 do not reconnect unchanged, 4100-4199 reconnect after backing off,
/// 4200-4299 reconnect at once, 4300+ is a permanent refusal in pusher-js (so 4301/4302 are
/// never used as close codes, only inside `pusher:error` frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// 1000: the client closed, we answer in kind.
    Normal = 1000,
    /// 1002: the peer broke the WebSocket framing rules.
    ProtocolError = 1002,
    /// 1009: a message larger than `max_message_bytes`.
    TooBig = 1009,
    /// 4001: no app has this key. Do not reconnect unchanged.
    AppNotFound = 4001,
    /// 4003: the app is disabled.
    AppDisabled = 4003,
    /// 4004: the app has as many connections as it may.
    OverQuota = 4004,
    /// 4005: the path is not `/app/{key}`.
    PathNotFound = 4005,
    /// 4006: the `protocol` parameter is not a number.
    InvalidVersion = 4006,
    /// 4007: a protocol version we do not speak.
    UnsupportedProtocol = 4007,
    /// 4008: no `protocol` parameter.
    NoProtocol = 4008,
    /// 4009: not allowed: origin refused, no sign-in in time, or terminated by the app.
    Unauthorized = 4009,
    /// 4100: the client reads slower than we publish; reconnect after backing off.
    OverCapacity = 4100,
    /// 4200: the server is going away (shutdown); reconnect at once.
    Reconnect = 4200,
    /// 4201: a server ping went unanswered; reconnect at once.
    PongTimeout = 4201,
}

impl CloseCode {
    /// The numeric code on the wire.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The reason an EMQX-style `client.disconnected` hook reports for a close with `code`.
    pub fn hook_reason(code: u16) -> &'static str {
        match code {
            1000 => "normal",
            4201 => "keepalive_timeout",
            4100 => "slow_consumer",
            4200 => "server_shutdown",
            4009 => "kicked",
            1002 | 1007 | 1009 => "protocol_error",
            _ => "not_authorized",
        }
    }

    /// The `conn_ack` an EMQX-style `client.connack` hook reports for a refused connection.
    pub fn conn_ack(self) -> &'static str {
        match self {
            CloseCode::InvalidVersion | CloseCode::UnsupportedProtocol | CloseCode::NoProtocol => {
                "unacceptable_protocol_version"
            }
            CloseCode::OverQuota | CloseCode::Reconnect => "server_unavailable",
            _ => "not_authorized",
        }
    }

    /// The human reason sent with the code.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "Bye",
            CloseCode::ProtocolError => "Protocol error",
            CloseCode::TooBig => "Message too big",
            CloseCode::AppNotFound => "Application does not exist",
            CloseCode::AppDisabled => "Application disabled",
            CloseCode::OverQuota => "Application is over connection quota",
            CloseCode::PathNotFound => "Path not found",
            CloseCode::InvalidVersion => "Invalid version string format",
            CloseCode::UnsupportedProtocol => "Unsupported protocol version",
            CloseCode::NoProtocol => "No protocol version supplied",
            CloseCode::Unauthorized => "Connection is unauthorized",
            CloseCode::OverCapacity => "Over capacity",
            CloseCode::Reconnect => "Server shutting down, reconnect",
            CloseCode::PongTimeout => "Pong reply not received",
        }
    }
}

impl From<CloseCode> for Close {
    fn from(code: CloseCode) -> Close {
        Close::fixed(code.code(), code.reason())
    }
}
