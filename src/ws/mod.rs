//! WebSocket over tungstenite's pieces, with no I/O and no runtime: the opening handshake
//! (`handshake`) and frame decoding and encoding (`frame`). Tested with byte vectors.

pub mod frame;
pub mod handshake;
