//! The edge: the accept loop and the opening of each connection (`accept`), plain or TLS
//! (`stream`, `tls`), what a shard lets in (`gate`: REST requests in progress, the descriptor
//! reserve), the router that sends an upgrade to its dialect and a plain request to a REST
//! route table (`router`), and the HTTP/1.1 server for those requests (`http`, over glommio
//! through `io`).

pub mod accept;
pub mod gate;
pub mod http;
pub mod io;
pub mod router;
pub mod stream;
pub mod tls;

use crate::config::Config;
use gate::FdBudget;
use std::time::Duration;
use tls::TlsContext;

/// How long a client may take to send a request head (the TLS handshake included for the
/// first one), measured from its first byte on a keep-alive connection.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What every shard's edge shares, built once at start: the TLS certificate (when the port is
/// TLS) and the open-file budget.
pub struct Edge {
    pub tls: Option<TlsContext>,
    pub fds: FdBudget,
}

impl Edge {
    /// Loads the certificate (an error names the file) and raises the open-file limit.
    pub fn new(config: &Config) -> Result<Edge, String> {
        let tls = config.tls.as_ref().map(TlsContext::load).transpose()?;
        let fds = FdBudget::new(config.fd_reserve);
        if config.fd_reserve > 0 && config.fd_reserve.saturating_mul(2) > fds.limit() {
            return Err(format!(
                "config key `fd_reserve`: {} would keep more than half of the open-file limit \
                 ({}) from clients; lower it or raise the limit (ulimit -n)",
                config.fd_reserve,
                fds.limit()
            ));
        }
        Ok(Edge { tls, fds })
    }

    /// Reloads the certificate for new connections (SIGHUP). Ok(false): no TLS configured.
    pub fn reload_tls(&self) -> Result<bool, String> {
        match &self.tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }
}
