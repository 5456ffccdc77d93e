//! `${VAR}` resolution: from the process environment, then `.env`, then `.env.local`
//! beside skippr.yaml. A value that came from a variable is treated as a secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The two dotenv files beside a config file.
#[derive(Debug, Default, Clone)]
pub struct EnvFiles {
    dir: PathBuf,
    files: Vec<(&'static str, BTreeMap<String, String>)>,
}

/// A string with its variables replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub value: String,
    /// Whether any part came from a variable, which makes the whole value a secret.
    pub from_env: bool,
}

impl EnvFiles {
    /// Reads `.env` and `.env.local` in `dir`, where present.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut files = Vec::new();
        for name in [".env", ".env.local"] {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    files.push((name, parse_dotenv(&text).map_err(|err| format!("{}: {err}", path.display()))?))
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
            }
        }
        Ok(Self { dir: dir.to_path_buf(), files })
    }

    fn lookup(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().or_else(|| self.files.iter().find_map(|(_, vars)| vars.get(name).cloned()))
    }

    /// Replaces every `${NAME}` in `text`; `$$` is a literal `$`. An unset variable is an
    /// error that names it and says where it was looked for.
    pub fn resolve(&self, text: &str) -> Result<Resolved, String> {
        let mut value = String::with_capacity(text.len());
        let mut from_env = false;
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            value.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(after) = after.strip_prefix('$') {
                value.push('$');
                rest = after;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = body.find('}').ok_or_else(|| format!("`${{` without a closing `}}` in {text:?}"))?;
                let name = &body[..end];
                if !is_variable_name(name) {
                    return Err(format!("`${{{name}}}` is not a valid variable name (letters, digits and _)"));
                }
                let found = self.lookup(name).ok_or_else(|| self.unset(name))?;
                value.push_str(&found);
                from_env = true;
                rest = &body[end + 1..];
            } else {
                value.push('$');
                rest = after;
            }
        }
        value.push_str(rest);
        Ok(Resolved { value, from_env })
    }

    fn unset(&self, name: &str) -> String {
        let dir = if self.dir.as_os_str().is_empty() { Path::new(".") } else { &self.dir };
        format!(
            "${{{name}}} is not set (looked in the environment, {} and {}): export {name}=… or add it to .env.local",
            dir.join(".env").display(),
            dir.join(".env.local").display()
        )
    }
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `KEY=VALUE` lines: `#` comments, an optional `export `, values bare, in single
/// quotes (taken as is) or in double quotes (with `\"`, `\\` and `\n` escapes).
pub(super) fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=').ok_or_else(|| format!("line {}: expected KEY=VALUE", number + 1))?;
        let key = key.trim();
        if !is_variable_name(key) {
            return Err(format!("line {}: {key:?} is not a valid variable name", number + 1));
        }
        vars.insert(key.to_owned(), unquote(value.trim()));
    }
    Ok(vars)
}

fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_owned();
    }
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// Quotes a value for a dotenv file so that [`parse_dotenv`] reads it back unchanged.
pub(super) fn quote(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dotenv: &str, local: &str) -> EnvFiles {
        EnvFiles {
            dir: PathBuf::from("/cfg"),
            files: vec![(".env", parse_dotenv(dotenv).unwrap()), (".env.local", parse_dotenv(local).unwrap())],
        }
    }

    #[test]
    fn variables_resolve_from_the_files_in_order() {
        let env = files("A=from-env-file\nB=b-env", "B=b-local\nC=c-local");
        assert_eq!(env.resolve("${A}").unwrap().value, "from-env-file");
        assert_eq!(env.resolve("${B}").unwrap().value, "b-env", ".env is read before .env.local");
        assert_eq!(env.resolve("x-${C}-y").unwrap(), Resolved { value: "x-c-local-y".into(), from_env: true });
    }

    #[test]
    fn the_process_environment_comes_first() {
        // PATH is set in every test environment.
        let env = files("PATH=not-this", "");
        assert_ne!(env.resolve("${PATH}").unwrap().value, "not-this");
    }

    #[test]
    fn plain_text_is_not_from_env() {
        let env = files("", "");
        assert_eq!(
            env.resolve("Bearer abc $5 $$x").unwrap(),
            Resolved { value: "Bearer abc $5 $x".into(), from_env: false }
        );
    }

    #[test]
    fn an_unset_variable_is_named_with_where_it_was_looked_for() {
        let err = files("", "").resolve("${SKIPPR_SURELY_UNSET_VAR}").unwrap_err();
        assert!(
            err.starts_with(
                "${SKIPPR_SURELY_UNSET_VAR} is not set (looked in the environment, /cfg/.env and /cfg/.env.local)"
            ),
            "{err}"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(files("", "").resolve("${A").unwrap_err().contains("without a closing"));
        assert!(files("", "").resolve("${A-B}").unwrap_err().contains("not a valid variable name"));
    }

    #[test]
    fn dotenv_quoting_round_trips() {
        for value in ["Bearer abc", "with \"quotes\" and \\ and\nnewline", "", "#not-a-comment"] {
            let parsed = parse_dotenv(&format!("export K={}\n# comment\n", quote(value))).unwrap();
            assert_eq!(parsed["K"], value);
        }
        assert_eq!(parse_dotenv("K='single $quoted'").unwrap()["K"], "single $quoted");
        assert!(parse_dotenv("just words").unwrap_err().contains("line 1"));
    }
}
