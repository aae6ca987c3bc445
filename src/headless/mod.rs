//! Headless participant: prints events, answers with defaults, replays transcripts.
