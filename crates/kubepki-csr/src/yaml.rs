//! YAML output in the shape `kubectl` and client-go write: block style, 2-space indentation,
//! sequences not indented under their key, long strings on one line, `{}` for empty maps.

use serde::Serialize;

/// Serializes `value` as YAML with kubepki's fixed options.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, String> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options).map_err(|e| e.to_string())
}

/// Parser options for every YAML file kubepki reads (manifests, kubeconfigs, kubeadm configs,
/// all at most 1 MiB): alias expansion and the node count are capped far below the parser's
/// defaults, so a "billion laughs" file is refused at once instead of being expanded.
pub fn read_options() -> serde_saphyr::Options {
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
    budget.max_depth = 64;
    o.budget = Some(budget);
    o
}
