//! The check of the commit `build.rs` writes into `kubepki version` (docs/install.md), shared
//! by `build.rs` (which includes this file) and the CLI's tests. A build script passes values
//! to the compiler one `cargo:` line at a time, so a value with a line break would add
//! directives of its own (`cargo:rustc-cfg=...`, link arguments), and a control character
//! would reach the terminal of whoever runs `kubepki version`.

/// `commit` if it is 1 to 64 ASCII letters, digits, `.`, `_`, `+` or `-` (a git hash, a tag,
/// `1.2.3+dirty`); otherwise why not.
pub fn checked(commit: &str) -> Result<&str, String> {
    let ok = (1..=64).contains(&commit.len())
        && commit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(commit)
    } else {
        Err(format!(
            "KUBEPKI_GIT_COMMIT {:?} must be 1 to 64 ASCII letters, digits, '.', '_', '+' or '-'",
            commit.chars().take(80).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::checked;

    #[test]
    fn only_a_short_word_of_safe_characters_is_a_commit() -> Result<(), String> {
        for good in [
            "73329f9e9daa0b7610e65f6917cd6fea3f769a24",
            "v0.1.0",
            "1.2.3+dirty",
        ] {
            assert_eq!(checked(good), Ok(good));
        }
        let long = "a".repeat(10_000);
        for bad in [
            "",
            "abc\ncargo:rustc-cfg=evil",
            "abc\rdef",
            "\u{1b}[31mred",
            "a b",
            "caf\u{e9}",
            long.as_str(),
        ] {
            let Err(e) = checked(bad) else {
                return Err(format!("{bad:?} was accepted"));
            };
            assert!(!e.contains('\n') && e.len() < 300, "{e}");
        }
        Ok(())
    }
}
