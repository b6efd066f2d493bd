//! STUB
#[derive(Debug, PartialEq, Eq)]
pub enum Sniff {
    NeedMore,
    Tls { sni: Option<String>, ech: bool },
    Http { host: Option<String> },
    Other,
    Bad(&'static str),
}
pub const MAX_SNIFF: usize = 16 * 1024 + 5;
pub fn sniff(_buf: &[u8]) -> Sniff {
    Sniff::Other
}
