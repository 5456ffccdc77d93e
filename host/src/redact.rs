//! Keeps secrets out of logs, errors and metrics: header values, URL passwords and
//! secret-looking query parameters are shown as `***`.

use url::Url;

/// Words that make a header or query parameter name look like it carries a secret.
const SECRET_WORDS: [&str; 8] = ["auth", "cookie", "token", "key", "secret", "password", "passwd", "signature"];
/// Auth schemes worth keeping visible: "Bearer ***" says more than "***".
const AUTH_SCHEMES: [&str; 4] = ["bearer", "basic", "token", "digest"];

/// Whether a header or parameter name suggests its value is a secret.
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// `Bearer abc` becomes `Bearer ***`; anything else becomes `***`.
pub fn redact_value(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) if AUTH_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) => format!("{scheme} ***"),
        _ => "***".to_owned(),
    }
}

/// The URL with its password and secret-looking query values replaced by `***`.
pub fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if looks_secret(&name) { "***".to_owned() } else { value.into_owned() };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string().replace("%2A%2A%2A", "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for name in ["Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key", "x-auth-token", "client_secret"] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["Accept", "User-Agent", "X-Request-Id"] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn values_keep_only_their_scheme() {
        assert_eq!(redact_value("Bearer abc.def"), "Bearer ***");
        assert_eq!(redact_value("basic dXNlcjpwYXNz"), "basic ***");
        assert_eq!(redact_value("s3cr3t"), "***");
        assert_eq!(redact_value("two words"), "***");
    }

    #[test]
    fn urls_lose_passwords_and_secret_parameters() {
        let url = Url::parse("wss://user:pw@h.example/v1?symbol=BTC&api_key=k123&token=t").unwrap();
        assert_eq!(redact_url(&url), "wss://user:***@h.example/v1?symbol=BTC&api_key=***&token=***");
        let plain = Url::parse("ws://localhost:8080/stream").unwrap();
        assert_eq!(redact_url(&plain), "ws://localhost:8080/stream");
    }
}
