//! What tokens cost: a table shipped with lev for the common models of the
//! providers lev speaks to, which the config's `prices:` extends and
//! overrides, and the lookup that prices a reply.
//!
//! Source: the providers' published API prices (openai.com/api/pricing,
//! anthropic.com/pricing), standard tier, no batch or cache discounts, as
//! known on [`SHIPPED_AS_OF`]. Prices change: a config entry for the same
//! name wins, and a model with no price is said once per run when a cost
//! budget needs it (`price_unknown`).

use super::{Price, PriceTable};
use crate::protocol::Usage;

/// When the shipped prices were last checked.
pub const SHIPPED_AS_OF: &str = "2025-11";

/// (model name or prefix, USD per million input tokens, per million output).
const SHIPPED: &[(&str, f64, f64)] = &[
    // OpenAI
    ("gpt-5", 1.25, 10.0),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4o", 2.50, 10.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("o1", 15.0, 60.0),
    ("o1-mini", 1.10, 4.40),
    ("o3", 2.0, 8.0),
    ("o3-mini", 1.10, 4.40),
    ("o3-pro", 20.0, 80.0),
    ("o4-mini", 1.10, 4.40),
    // Anthropic
    ("claude-opus-4", 15.0, 75.0),
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-3-5-haiku", 0.80, 4.0),
    ("claude-3-opus", 15.0, 75.0),
    ("claude-3-haiku", 0.25, 1.25),
];

/// The shipped table.
pub fn shipped() -> PriceTable {
    SHIPPED
        .iter()
        .map(|&(model, input, output)| {
            (
                model.to_string(),
                Price {
                    input_per_mtok: input,
                    output_per_mtok: output,
                },
            )
        })
        .collect()
}

/// The shipped table with `configured` over it (a configured entry for the
/// same name wins).
pub fn with_shipped(configured: &PriceTable) -> PriceTable {
    let mut prices = shipped();
    prices.extend(configured.iter().map(|(k, v)| (k.clone(), v.clone())));
    prices
}

/// The price of `model`: its exact entry, else the longest entry that is a
/// prefix of it followed by `-`, `@` or `:` (so `gpt-4o-mini`
/// prices `gpt-4o-mini-2024-07-18` and `claude-sonnet-4` prices
/// `claude-sonnet-4-20250514`).
pub fn lookup<'a>(prices: &'a PriceTable, model: &str) -> Option<&'a Price> {
    prices.get(model).or_else(|| {
        prices
            .iter()
            .filter(|(k, _)| {
                model
                    .strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.starts_with(['-', '@', ':']))
            })
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| p)
    })
}

/// Cost in USD of `usage` for `model`; 0 when no price fits.
pub fn cost_usd(prices: &PriceTable, model: &str, usage: &Usage) -> f64 {
    lookup(prices, model).map_or(0.0, |p| {
        (usage.input_tokens as f64 * p.input_per_mtok
            + usage.output_tokens as f64 * p.output_per_mtok)
            / 1_000_000.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> Usage {
        Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            ..Usage::default()
        }
    }

    #[test]
    fn dated_model_names_take_their_family_price() {
        let prices = shipped();
        assert_eq!(cost_usd(&prices, "gpt-4o", &usage()), 3.5);
        assert_eq!(cost_usd(&prices, "gpt-4o-2024-08-06", &usage()), 3.5);
        let mini = cost_usd(&prices, "gpt-4o-mini-2024-07-18", &usage());
        assert!((mini - 0.21).abs() < 1e-9, "{mini}");
        assert_eq!(cost_usd(&prices, "claude-sonnet-4-20250514", &usage()), 4.5);
        assert_eq!(cost_usd(&prices, "claude-sonnet-4-5", &usage()), 4.5);
        assert_eq!(
            cost_usd(&prices, "claude-opus-4-1-20250805", &usage()),
            22.5
        );
        assert_eq!(cost_usd(&prices, "claude-opus-4-5-20251101", &usage()), 7.5);
    }

    #[test]
    fn a_longer_name_is_not_priced_as_its_prefix() {
        let prices = shipped();
        // `o3-pro` has its own price; `gpt-4o` is not `gpt-4`; `o1x` is
        // not `o1`.
        assert_eq!(cost_usd(&prices, "o3-pro", &usage()), 28.0);
        assert_eq!(lookup(&prices, "gpt-4"), None);
        assert_eq!(lookup(&prices, "o1x"), None);
        assert_eq!(lookup(&prices, "llama3.2"), None);
    }

    #[test]
    fn the_config_overrides_and_extends_the_shipped_prices() {
        let mut configured = PriceTable::new();
        let price = |i, o| Price {
            input_per_mtok: i,
            output_per_mtok: o,
        };
        configured.insert("gpt-4o".into(), price(1.0, 1.0));
        configured.insert("my-model".into(), price(2.0, 0.0));
        let prices = with_shipped(&configured);
        assert_eq!(cost_usd(&prices, "gpt-4o", &usage()), 1.1);
        assert_eq!(cost_usd(&prices, "my-model", &usage()), 2.0);
        assert_eq!(cost_usd(&prices, "gpt-4.1", &usage()), 2.8);
    }
}
