//! How a request is written for a model: which field carries the output
//! token limit, and whether a temperature may be sent. OpenAI's reasoning
//! models (`o1`, `o3`, `o4-mini`, `gpt-5`, …) answer HTTP 400 to
//! `max_tokens` ("use 'max_completion_tokens'") and to any temperature;
//! older OpenAI-compatible servers (Ollama, vLLM, llama.cpp) know only
//! `max_tokens`. The config's `models:` table says what a model takes, by
//! its name or a prefix of it (the longest that fits wins); models it does
//! not name get the built-in rules below.

pub use crate::config::{ModelParams, ModelParamsTable, TokenLimitField};

/// What a request to one model carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestParams {
    pub max_tokens_field: TokenLimitField,
    pub temperature: bool,
}

/// Whether `model` is one of OpenAI's reasoning models, which take
/// neither `max_tokens` nor a temperature. A vendor prefix (`openai/o3`
/// on OpenRouter) is looked through.
fn openai_reasoning_model(model: &str) -> bool {
    let name = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let family = |p: &str| {
        name.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.', '_']))
    };
    ["o1", "o3", "o4", "gpt-5"].into_iter().any(family)
}

/// The parameters for `model` on an endpoint: the `models:` entry for it
/// (exact name, else longest prefix) over the built-in rules. Built in:
/// OpenAI's reasoning models take `max_completion_tokens` and no
/// temperature; OpenAI's own API (`official_openai`) takes
/// `max_completion_tokens` for every model, since it deprecated
/// `max_tokens`; anything else takes `max_tokens` and a temperature.
pub fn for_model(table: &ModelParamsTable, official_openai: bool, model: &str) -> RequestParams {
    let reasoning = openai_reasoning_model(model);
    let builtin = RequestParams {
        max_tokens_field: if reasoning || official_openai {
            TokenLimitField::MaxCompletionTokens
        } else {
            TokenLimitField::MaxTokens
        },
        temperature: !reasoning,
    };
    let entry = table.get(model).or_else(|| {
        table
            .iter()
            .filter(|(k, _)| model.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| p)
    });
    let Some(entry) = entry else {
        return builtin;
    };
    RequestParams {
        max_tokens_field: entry.max_tokens_field.unwrap_or(builtin.max_tokens_field),
        temperature: entry.temperature.unwrap_or(builtin.temperature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_models_and_the_official_api_get_max_completion_tokens() {
        let none = ModelParamsTable::new();
        for m in [
            "o1",
            "o3-mini",
            "o4-mini-2025-04-16",
            "gpt-5",
            "gpt-5-nano",
            "openai/o3",
        ] {
            let p = for_model(&none, false, m);
            assert_eq!(
                p.max_tokens_field,
                TokenLimitField::MaxCompletionTokens,
                "{m}"
            );
            assert!(!p.temperature, "{m}");
        }
        for m in ["gpt-4o-mini", "llama3.2", "o1ver-7b", "qwen3"] {
            let p = for_model(&none, false, m);
            assert_eq!(p.max_tokens_field, TokenLimitField::MaxTokens, "{m}");
            assert!(p.temperature, "{m}");
        }
        let p = for_model(&none, true, "gpt-4o-mini");
        assert_eq!(p.max_tokens_field, TokenLimitField::MaxCompletionTokens);
        assert!(p.temperature);
    }

    #[test]
    fn the_config_wins_by_exact_name_or_longest_prefix() {
        let mut table = ModelParamsTable::new();
        table.insert(
            "deepseek-r".into(),
            ModelParams {
                max_tokens_field: None,
                temperature: Some(false),
            },
        );
        table.insert(
            "deepseek-r1-distill".into(),
            ModelParams {
                max_tokens_field: Some(TokenLimitField::MaxCompletionTokens),
                temperature: None,
            },
        );
        let p = for_model(&table, false, "deepseek-reasoner");
        assert_eq!(p.max_tokens_field, TokenLimitField::MaxTokens);
        assert!(!p.temperature);
        let p = for_model(&table, false, "deepseek-r1-distill-qwen");
        assert_eq!(p.max_tokens_field, TokenLimitField::MaxCompletionTokens);
        assert!(p.temperature);
    }
}
