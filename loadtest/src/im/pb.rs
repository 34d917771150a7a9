//! The few xxim protobuf messages the IM load clients speak (field numbers as xxim's sdk.proto).

#[derive(Clone, PartialEq, prost::Message)]
pub struct PushBody {
    #[prost(int32, tag = "1")]
    pub event: i32,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestBody {
    #[prost(int32, tag = "1")]
    pub event: i32,
    #[prost(string, tag = "2")]
    pub req_id: String,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseBody {
    #[prost(int32, tag = "1")]
    pub event: i32,
    #[prost(string, tag = "2")]
    pub req_id: String,
    #[prost(int32, tag = "3")]
    pub code: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}
