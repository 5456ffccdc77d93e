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

#[cfg(test)]
mod tests {
    use skippr_sdk::{Shaper, Source};

    use super::*;
    use crate::DefaultShaper;

    fn refusal(json: &str) -> String {
        Shaper::<DefaultShaper>::init(&Source::default(), json).unwrap_err()
    }

    #[test]
    fn empty_object_means_defaults() {
        assert_eq!(serde_json::from_str::<Options>("{}").unwrap(), Options::default());
        assert!(Shaper::<DefaultShaper>::init(&Source::default(), "").is_ok());
    }

    #[test]
    fn include_meta_can_be_turned_off() {
        assert!(!serde_json::from_str::<Options>(r#"{"include_meta":false}"#).unwrap().include_meta);
    }

    #[test]
    fn unknown_option_is_refused_by_name() {
        let err = refusal(r#"{"include_mета":true}"#);
        assert!(err.contains("unknown field `include_mета`"), "{err}");
        assert!(err.contains("include_meta"), "the valid name is suggested: {err}");
    }

    #[test]
    fn wrong_type_is_refused_naming_the_option() {
        let err = refusal(r#"{"include_meta":"yes"}"#);
        assert!(err.starts_with("invalid transform option `include_meta`: invalid type"), "{err}");
    }
}
