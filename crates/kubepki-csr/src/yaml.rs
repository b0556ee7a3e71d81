//! YAML output in the shape `kubectl` and client-go write: block style, 2-space indentation,
//! sequences not indented under their key, long strings on one line, `{}` for empty maps.

use serde::Serialize;

/// Serializes `value` as YAML with kubepki's fixed options.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, String> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options).map_err(|e| e.to_string())
}
