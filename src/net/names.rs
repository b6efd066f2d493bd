//! STUB (replaced by the gate-proto branch)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamePattern(String);
impl NamePattern {
    pub fn parse(s: &str) -> Result<NamePattern, String> {
        Ok(NamePattern(s.to_ascii_lowercase()))
    }
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_prefix("*.") {
            Some(suffix) => name.ends_with(&format!(".{suffix}")),
            None => name == self.0,
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Display for NamePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
pub fn normalize(name: &str) -> Option<String> {
    Some(name.trim_end_matches('.').to_ascii_lowercase())
}
