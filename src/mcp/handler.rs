//! lev's side of one connection: what lev answers when the server talks
//! first (a changed tool list, an elicitation), and the state those answers
//! touch — the tool cache and where each call's progress goes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
    ElicitationCapability, FormElicitationCapability, Implementation, ProgressNotificationParam,
    ProgressToken, ProtocolVersion,
};
use rmcp::service::{NotificationContext, RequestContext, RoleClient};
use rmcp::{ClientHandler, ErrorData, Peer};
use tokio::sync::mpsc::UnboundedSender;

use super::{McpTool, PoolNotice, Progress, content};

/// Progress for a token no call follows yet: the server may answer before
/// the call has registered its token. Older ones are dropped.
const EARLY_PROGRESS: usize = 64;

/// How often one refresh lists the tools again when the list changed
/// while it was being listed.
const REFRESH_ROUNDS: usize = 4;

const REFRESH_LIMIT: Duration = Duration::from_secs(60);

/// State of one connection shared by the pool and the handler.
pub(crate) struct Shared {
    pub(crate) server: String,
    notices: UnboundedSender<PoolNotice>,
    elicitor: Option<Arc<dyn super::Elicitor>>,
    progress: Mutex<Routes>,
    tools: Mutex<ToolCache>,
    /// The server refused the session, in its words (see [`super::tap`]).
    refusal: Mutex<Option<String>>,
}

#[derive(Default)]
struct Routes {
    live: HashMap<ProgressToken, UnboundedSender<Progress>>,
    early: VecDeque<ProgressNotificationParam>,
}

#[derive(Default)]
struct ToolCache {
    tools: Option<Vec<McpTool>>,
    /// Bumped when the server says the list changed, so a listing that
    /// started before is not stored as current.
    generation: u64,
    refreshing: bool,
}

impl Shared {
    pub(crate) fn new(
        server: &str,
        notices: UnboundedSender<PoolNotice>,
        elicitor: Option<Arc<dyn super::Elicitor>>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            server: server.to_string(),
            notices,
            elicitor,
            progress: Mutex::default(),
            tools: Mutex::default(),
            refusal: Mutex::default(),
        })
    }

    /// The engine may have stopped listening; the pool goes on.
    pub(crate) fn notify(&self, notice: PoolNotice) {
        let _ = self.notices.send(notice);
    }

    /// Sends the progress of the request with `token` to `to` until the
    /// returned route is dropped.
    pub(crate) fn follow(
        self: &Arc<Self>,
        token: ProgressToken,
        to: UnboundedSender<Progress>,
    ) -> ProgressRoute {
        let mut routes = lock(&self.progress);
        let (early, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut routes.early)
            .into_iter()
            .partition(|p| p.progress_token == token);
        routes.early = rest;
        for p in &early {
            let _ = to.send(progress(p));
        }
        routes.live.insert(token.clone(), to);
        ProgressRoute {
            shared: self.clone(),
            token,
        }
    }

    /// Called for each progress notification, in the order they arrive.
    pub(crate) fn progress(&self, p: &ProgressNotificationParam) {
        let mut routes = lock(&self.progress);
        if let Some(to) = routes.live.get(&p.progress_token) {
            let _ = to.send(progress(p));
            return;
        }
        if routes.early.len() == EARLY_PROGRESS {
            routes.early.pop_front();
        }
        routes.early.push_back(p.clone());
    }

    pub(crate) fn refused(&self, why: String) {
        *lock(&self.refusal) = Some(why);
    }

    pub(crate) fn refusal(&self) -> Option<String> {
        lock(&self.refusal).clone()
    }

    pub(crate) fn cached_tools(&self) -> Option<Vec<McpTool>> {
        lock(&self.tools).tools.clone()
    }

    pub(crate) fn tools_generation(&self) -> u64 {
        lock(&self.tools).generation
    }

    /// Caches `tools`, listed when the cache was at `generation`, unless the
    /// list changed since. Whether they were stored.
    pub(crate) fn store_tools(&self, generation: u64, tools: Vec<McpTool>) -> bool {
        let mut cache = lock(&self.tools);
        if cache.generation != generation {
            return false;
        }
        cache.tools = Some(tools);
        true
    }

    /// Forgets the tools; whether a refresh should start (none is running).
    fn tools_changed(&self) -> bool {
        let mut cache = lock(&self.tools);
        cache.generation += 1;
        cache.tools = None;
        !std::mem::replace(&mut cache.refreshing, true)
    }

    fn refreshed(&self) {
        lock(&self.tools).refreshing = false;
    }
}

/// A call's claim on its progress notifications.
pub(crate) struct ProgressRoute {
    shared: Arc<Shared>,
    token: ProgressToken,
}

impl Drop for ProgressRoute {
    fn drop(&mut self) {
        lock(&self.shared.progress).live.remove(&self.token);
    }
}

fn progress(p: &ProgressNotificationParam) -> Progress {
    Progress {
        progress: p.progress,
        total: p.total,
        message: p.message.clone(),
    }
}

/// A poisoned lock only means another thread panicked holding it; the data
/// (routes, a cache) is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How lev introduces itself: it can be asked questions (elicitation), which
/// it declines for now but reports, so a server's tools that ask are offered
/// and fail in words rather than being hidden.
pub(crate) fn client_config() -> ClientConfig {
    let mut capabilities = ClientCapabilities::default();
    capabilities.elicitation =
        Some(ElicitationCapability::new().with_form(FormElicitationCapability::default()));
    ClientConfig::new(
        capabilities,
        Implementation::new("lev", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

/// The [`ClientHandler`] of one connection. Progress is not handled here:
/// rmcp runs each notification handler as its own task, so a call's last
/// progress could come after its result; [`super::tap`] routes it as it
/// arrives instead.
pub(crate) struct Handler {
    pub(crate) shared: Arc<Shared>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        client_config()
    }

    async fn on_tool_list_changed(&self, context: NotificationContext<RoleClient>) {
        if self.shared.tools_changed() {
            tokio::spawn(refresh(self.shared.clone(), context.peer));
        }
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let server = self.shared.server.clone();
        let asked = match &request {
            ElicitRequestParams::FormElicitationParams {
                message,
                requested_schema,
                ..
            } => Some(super::Elicitation {
                server: server.clone(),
                message: message.clone(),
                schema: serde_json::to_value(requested_schema).ok(),
                url: None,
            }),
            ElicitRequestParams::UrlElicitationParams { message, url, .. } => {
                Some(super::Elicitation {
                    server: server.clone(),
                    message: message.clone(),
                    schema: None,
                    url: Some(url.clone()),
                })
            }
            _ => None,
        };
        if let (Some(elicitor), Some(asked)) = (&self.shared.elicitor, asked.clone()) {
            return Ok(match elicitor.elicit(asked).await {
                super::Elicited::Accept(content) => ElicitResult::new(ElicitationAction::Accept)
                    .with_content(serde_json::Value::Object(content)),
                super::Elicited::Decline => ElicitResult::new(ElicitationAction::Decline),
                super::Elicited::Cancel => ElicitResult::new(ElicitationAction::Cancel),
            });
        }
        let message = match (&request, asked) {
            (_, Some(a)) => match a.url {
                Some(url) => format!("{} ({url})", a.message),
                None => a.message,
            },
            (other, None) => serde_json::to_string(other).unwrap_or_default(),
        };
        tracing::debug!(server = %self.shared.server, "declined an elicitation");
        self.shared.notify(PoolNotice::Elicitation {
            server: self.shared.server.clone(),
            message,
        });
        Ok(ElicitResult::new(ElicitationAction::Decline))
    }
}

/// Lists the tools again after the server said they changed, then says so.
/// Changes that arrive during a refresh are folded into it.
async fn refresh(shared: Arc<Shared>, peer: Peer<RoleClient>) {
    for _ in 0..REFRESH_ROUNDS {
        let generation = shared.tools_generation();
        match tokio::time::timeout(REFRESH_LIMIT, peer.list_all_tools()).await {
            Ok(Ok(list)) => {
                let tools = list
                    .iter()
                    .map(|t| content::tool(&shared.server, t))
                    .collect();
                if shared.store_tools(generation, tools) {
                    break;
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(server = %shared.server, error = %e, "listing changed tools failed");
                break;
            }
            Err(_) => {
                tracing::debug!(server = %shared.server, "listing changed tools timed out");
                break;
            }
        }
    }
    shared.refreshed();
    shared.notify(PoolNotice::ToolsChanged {
        server: shared.server.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::NumberOrString;

    fn note(token: i64, at: f64) -> ProgressNotificationParam {
        ProgressNotificationParam::new(ProgressToken(NumberOrString::Number(token)), at)
    }

    #[test]
    fn progress_that_comes_before_its_call_follows_it_still_reaches_it() {
        let (notices, _rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared::new("s", notices, None);
        shared.progress(&note(1, 1.0));
        shared.progress(&note(2, 7.0));
        let (to, mut from) = tokio::sync::mpsc::unbounded_channel();
        let route = shared.follow(ProgressToken(NumberOrString::Number(1)), to);
        shared.progress(&note(1, 2.0));
        assert_eq!(from.try_recv().unwrap().progress, 1.0);
        assert_eq!(from.try_recv().unwrap().progress, 2.0);
        assert!(from.try_recv().is_err());
        drop(route);
        shared.progress(&note(1, 3.0));
        assert!(from.try_recv().is_err());
        assert_eq!(lock(&shared.progress).early.len(), 2);
    }

    #[test]
    fn a_listing_started_before_a_change_is_not_cached() {
        let (notices, _rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared::new("s", notices, None);
        let before = shared.tools_generation();
        assert!(shared.tools_changed());
        assert!(!shared.tools_changed(), "one refresh at a time");
        assert!(!shared.store_tools(before, Vec::new()));
        assert_eq!(shared.cached_tools(), None);
        assert!(shared.store_tools(shared.tools_generation(), Vec::new()));
        assert_eq!(shared.cached_tools(), Some(Vec::new()));
    }
}
