use super::{LlmError, SharedProvider};
use crate::config::Config;
pub fn build_provider(_cfg: &Config) -> Result<SharedProvider, LlmError> {
    Err(LlmError::Config("not yet".into()))
}
