//! Counting tokens: a real tokenizer for OpenAI-family models (tiktoken's
//! `o200k_base` for GPT-4o, GPT-4.1, GPT-5 and the o-series, `cl100k_base`
//! for GPT-4 and GPT-3.5), and for every other model a stated estimate of
//! one token per four characters (rounded up), the rule the scripted
//! provider and the budgets already use for replies without counts.

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// How a model's text is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    O200k,
    Cl100k,
    /// Four characters a token, rounded up.
    Estimate,
}

impl Counter {
    /// The counter for `model` (a provider prefix such as `openai/` is
    /// ignored).
    pub fn for_model(model: &str) -> Counter {
        let name = model.rsplit('/').next().unwrap_or(model).trim();
        match get_tokenizer(name) {
            Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => Counter::O200k,
            Some(Tokenizer::Cl100kBase) => Counter::Cl100k,
            _ => Counter::Estimate,
        }
    }

    /// What the counts are, for people: `o200k_base`, or the estimate.
    pub fn name(self) -> &'static str {
        match self {
            Counter::O200k => "o200k_base",
            Counter::Cl100k => "cl100k_base",
            Counter::Estimate => "estimate: 4 characters a token",
        }
    }

    /// The tokens of `text`.
    pub fn count(self, text: &str) -> u64 {
        match self {
            Counter::O200k => bpe(self).encode_ordinary(text).len() as u64,
            Counter::Cl100k => bpe(self).encode_ordinary(text).len() as u64,
            Counter::Estimate => estimate(text),
        }
    }
}

/// One token per four characters, rounded up.
pub fn estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The tokenizer's tables, built once per process on first use.
fn bpe(counter: Counter) -> &'static CoreBPE {
    match counter {
        Counter::Cl100k => tiktoken_rs::cl100k_base_singleton(),
        _ => tiktoken_rs::o200k_base_singleton(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_models_get_their_tokenizer_and_others_the_estimate() {
        assert_eq!(Counter::for_model("gpt-4o-mini"), Counter::O200k);
        assert_eq!(Counter::for_model("openai/gpt-4.1"), Counter::O200k);
        assert_eq!(Counter::for_model("gpt-5"), Counter::O200k);
        assert_eq!(Counter::for_model("gpt-4"), Counter::Cl100k);
        assert_eq!(Counter::for_model("claude-sonnet-4-5"), Counter::Estimate);
        assert_eq!(Counter::for_model(""), Counter::Estimate);
    }

    #[test]
    fn counts_are_real_for_tiktoken_and_stated_for_the_estimate() {
        // "hello world" is two tokens in both OpenAI encodings.
        assert_eq!(Counter::O200k.count("hello world"), 2);
        assert_eq!(Counter::Cl100k.count("hello world"), 2);
        assert_eq!(Counter::Estimate.count("hello world"), 3);
        assert_eq!(Counter::Estimate.count(""), 0);
        assert_eq!(Counter::Estimate.count("日本語"), 1);
    }
}
