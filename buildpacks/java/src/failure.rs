//! Messages for the buildpack's failures that carry no source of their own.

/// Returns `err` followed by each of its causes, `: `-separated, for a message that carries
/// no source of its own (`BuildpackError::App`): the causes are said once, not lost.
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
