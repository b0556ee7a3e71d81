//! The one place where kubepki reads and writes YAML.
//!
//! Output has the shape `kubectl` and client-go write: block style, 2-space indentation,
//! sequences not indented under their key, long strings on one line, `{}` for empty maps.
//!
//! Input (manifests, kubeconfigs, kubeadm configs, all at most 1 MiB) is parsed with fixed
//! budgets: alias expansion and the node count are capped far below the parser's defaults, so a
//! "billion laughs" file is refused at once instead of being expanded, and mappings and
//! sequences may nest at most [`MAX_DEPTH`] levels. The deserializer recurses once per level, and
//! in a debug build a level costs up to about 40 KiB of stack (a complex key, `? `, is the dearest
//! shape), so the cap keeps the worst input within half of the 2 MiB stack Rust gives a spawned
//! thread; a release build needs about 4 KiB a level. The deepest real files are well inside it: a
//! CertificateSigningRequest as `kubectl get csr NAME -o yaml` prints it, managed fields included,
//! nests 9 levels; a kubeconfig whose user runs an exec plugin with environment variables, 7; a
//! kubeadm v1beta4 config with `extraArgs`, 5.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;

/// A value read together with where it is in the text (byte offsets with [`from_str`]): for
/// editors that change one node and keep every other byte.
pub use serde_saphyr::Spanned;

/// The deepest nesting of mappings and sequences that kubepki reads; deeper input is refused.
pub const MAX_DEPTH: usize = 24;

/// Serializes `value` as YAML with kubepki's fixed options.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, String> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options).map_err(|e| e.to_string())
}

/// Parses one YAML document with kubepki's budgets. The error is one line, with the position.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_saphyr::from_str_with_options(text, read_options()).map_err(|e| message(&e))
}

/// Why [`from_str_without_merge_keys`] refused a text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// A YAML merge key: a plain `<<` key, or one tagged `!!merge` (the forms YAML 1.1 and
    /// go-yaml treat as a merge; a quoted `"<<"` is an ordinary key), at this 1-based position.
    MergeKey {
        /// Line.
        line: u64,
        /// Column.
        column: u64,
    },
    /// Any other problem: one line, with the position.
    Other(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::MergeKey { line, column } => {
                write!(f, "line {line} column {column}: a YAML merge key (<<)")
            }
            ReadError::Other(m) => f.write_str(m),
        }
    }
}

/// Parses one YAML document like [`from_str`], refusing every YAML merge key (anywhere in the
/// document, also in fields the target type ignores). For files another program reads too, when
/// the two could resolve a merge differently: go-yaml v2 (kubectl's reader, through
/// sigs.k8s.io/yaml) applies a mapping's keys and merges in the order they are written, so a
/// `<<` after a key overrides it, while this parser lets explicit keys win wherever they are.
pub fn from_str_without_merge_keys<T: DeserializeOwned>(text: &str) -> Result<T, ReadError> {
    let mut options = read_options();
    options.merge_keys = serde_saphyr::MergeKeyPolicy::Error;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        if let serde_saphyr::Error::MergeKeyNotAllowed { location } = e.without_snippet() {
            ReadError::MergeKey {
                line: location.line(),
                column: location.column(),
            }
        } else {
            ReadError::Other(message(&e))
        }
    })
}

/// Parses a stream of YAML documents (separated by `---`) with kubepki's budgets.
pub fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, String> {
    serde_saphyr::from_multiple_with_options(text, read_options()).map_err(|e| message(&e))
}

fn read_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    let mut limits = serde_saphyr::options::AliasLimits::default();
    limits.max_total_replayed_events = 10_000;
    limits.max_replay_stack_depth = 16;
    limits.max_alias_expansions_per_anchor = 100;
    o.alias_limits = limits;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 50_000;
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_depth = MAX_DEPTH;
    o.budget = Some(budget);
    o
}

fn message(e: &serde_saphyr::Error) -> String {
    if let serde_saphyr::Error::Budget {
        breach: BudgetBreach::Depth { .. },
        location,
    } = e.without_snippet()
    {
        return format!(
            "line {} column {}: mappings and sequences nest deeper than {MAX_DEPTH} levels",
            location.line(),
            location.column()
        );
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    type Doc = BTreeMap<String, serde_json::Value>;

    /// `depth` levels in total: the top mapping plus `depth - 1` nested flow sequences.
    fn nested(depth: usize) -> String {
        format!("a: {}1{}\n", "[".repeat(depth - 1), "]".repeat(depth - 1))
    }

    #[test]
    fn nesting_up_to_the_cap_is_read_and_one_more_level_is_refused() -> Result<(), String> {
        let doc: Doc = from_str(&nested(MAX_DEPTH))?;
        assert!(doc.get("a").is_some_and(serde_json::Value::is_array));
        assert_eq!(
            from_str::<Doc>(&nested(MAX_DEPTH + 1)).err().as_deref(),
            Some("line 1 column 27: mappings and sequences nest deeper than 24 levels")
        );
        Ok(())
    }

    #[test]
    fn deep_complex_keys_are_refused_by_the_same_cap() {
        // The shape the kubeconfig fuzzer found: `? ` opens a mapping inside a key.
        let text = format!("a:\n  {}b\n", "? ".repeat(MAX_DEPTH));
        let e = from_str::<Doc>(&text).err().unwrap_or_default();
        assert!(e.ends_with("nest deeper than 24 levels"), "{e}");
    }

    #[test]
    fn merge_keys_are_refused_where_asked_and_quoted_ones_are_plain_keys() -> Result<(), String> {
        for (text, line) in [
            ("a: {b: 1}\nc:\n  b: 2\n  <<: {b: 3}\n", 4),
            ("a: &x {b: 1}\nc:\n  - b: 2\n    <<: *x\n", 4),
            ("a: &x {b: 1}\nc: {<<: [*x, {b: 3}]}\n", 2),
            ("x: 1\nc:\n  !!merge <<: {b: 3}\n", 3),
            ("x: 1\nc:\n  !<tag:yaml.org,2002:merge> '<<': {b: 3}\n", 3),
        ] {
            let e = from_str_without_merge_keys::<Doc>(text).err();
            assert!(
                matches!(e, Some(ReadError::MergeKey { line: l, .. }) if l == line),
                "{text:?}: {e:?}"
            );
            // The default reader expands them.
            from_str::<Doc>(text)?;
        }
        let doc: Doc =
            from_str_without_merge_keys("c: {'<<': {b: 3}}\n").map_err(|e| e.to_string())?;
        assert_eq!(doc["c"]["<<"]["b"], 3);
        Ok(())
    }

    #[test]
    fn other_errors_are_one_line_with_the_position() -> Result<(), String> {
        let e = from_str::<Doc>("a: [1\n").err().unwrap_or_default();
        assert!(!e.contains('\n') && e.starts_with("line "), "{e}");
        let docs: Vec<Doc> = from_multiple("a: 1\n---\nb: 2\n")?;
        assert_eq!(docs.len(), 2);
        Ok(())
    }
}
