//! The edge: the accept loop and the opening of each connection (`accept`), the router that
//! sends an upgrade to its dialect and a plain request to a REST route table (`router`), and
//! the HTTP/1.1 server for those requests (`http`, over glommio through `io`).

pub mod accept;
pub mod http;
pub mod io;
pub mod router;
