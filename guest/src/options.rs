//! The default shaper's own options, read from the `transform.options` config section.

use serde::Deserialize;

/// Options of the default shaper. Unknown options are refused so a typo is not ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Add the `meta` object (url, connection, sequence, receive time, kind) to each record.
    pub include_meta: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { include_meta: true }
    }
}

impl Options {
    /// Parses options from the JSON the host passes; empty text means all defaults.
    pub fn parse(json: &str) -> Result<Self, String> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(json).map_err(|err| format!("invalid transform options: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_empty_object_mean_defaults() {
        assert_eq!(Options::parse("").unwrap(), Options::default());
        assert_eq!(Options::parse("{}").unwrap(), Options::default());
    }

    #[test]
    fn include_meta_can_be_turned_off() {
        assert!(!Options::parse(r#"{"include_meta":false}"#).unwrap().include_meta);
    }

    #[test]
    fn unknown_option_is_refused_by_name() {
        let err = Options::parse(r#"{"include_mета":true}"#).unwrap_err();
        assert!(err.contains("unknown field `include_mета`"), "{err}");
        assert!(err.contains("include_meta"), "the valid name is suggested: {err}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let err = Options::parse(r#"{"include_meta":"yes"}"#).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
    }
}
