//! STUB
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}
pub fn parse_query(_buf: &[u8]) -> Result<Query, &'static str> {
    Err("stub")
}
pub fn refused(_query: &[u8]) -> Option<Vec<u8>> {
    None
}
pub fn no_data(_query: &[u8]) -> Option<Vec<u8>> {
    None
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u8,
    pub addrs: Vec<(std::net::IpAddr, u32)>,
    pub chain: Vec<String>,
}
pub fn check_response(_resp: &[u8], _q: &Query) -> Result<Answer, &'static str> {
    Err("stub")
}
pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SVCB: u16 = 64;
pub const TYPE_HTTPS: u16 = 65;
/// A query for `name` of type `qtype` (recursion desired).
pub fn query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let _ = (id, name, qtype);
    None
}
