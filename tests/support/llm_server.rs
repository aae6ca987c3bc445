//! A real HTTP/1.1 server on 127.0.0.1 that plays an LLM endpoint, for
//! tests. It runs on its own thread with its own tokio runtime, so async
//! tests and synchronous tests (which spawn a `lev` child process pointed at
//! `base_url()`) can both use it.
//!
//! A responder sees each request (with its sequence number) and returns a
//! [`Reply`]: a status, headers and a list of [`Action`]s played in order.
//! Bodies are sent with chunked transfer encoding, so
//! [`Action::DropConnection`] is a real truncated response the client sees
//! as a broken body; every connection closes after one response.
//!
//! [`OpenAiSse`] and [`AnthropicSse`] (in `llm_server/sse.rs`) build streamed replies in each
//! provider's wire format (text split into pieces, tool calls whose
//! arguments arrive in pieces, usage, terminators).

#![allow(dead_code)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

mod sse;
#[allow(unused_imports)]
pub use sse::*;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path with query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// 0 for the first request the server saw, then 1, 2, …
    pub seq: usize,
    pub received_at: Instant,
}

impl RecordedRequest {
    /// The first user message of a chat request: an agent's brief.
    pub fn brief(&self) -> String {
        self.json
            .as_ref()
            .and_then(|j| {
                j["messages"]
                    .as_array()?
                    .iter()
                    .find(|m| m["role"] == "user")?["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One step of writing a response body.
#[derive(Debug, Clone)]
pub enum Action {
    /// Body text, sent as one chunk.
    Body(String),
    /// One server-sent event; multi-line data becomes several `data:` lines.
    SseEvent { event: Option<String>, data: String },
    /// Bytes sent as one body chunk exactly as given (half an SSE line,
    /// invalid UTF-8, …).
    Raw(Vec<u8>),
    /// Flush, then wait this many milliseconds.
    Delay(u64),
    /// Close the socket without finishing the body.
    DropConnection,
}

impl Action {
    pub fn sse_data(data: impl Into<String>) -> Action {
        Action::SseEvent {
            event: None,
            data: data.into(),
        }
    }

    pub fn sse(event: &str, data: impl Into<String>) -> Action {
        Action::SseEvent {
            event: Some(event.to_string()),
            data: data.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub actions: Vec<Action>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            actions: vec![],
        }
    }

    /// A JSON body.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::new(status)
            .header("content-type", "application/json")
            .then(Action::Body(body.to_string()))
    }

    /// A `text/event-stream` reply playing `actions`.
    pub fn sse(actions: Vec<Action>) -> Reply {
        let mut r = Reply::new(200).header("content-type", "text/event-stream");
        r.actions = actions;
        r
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn then(mut self, action: Action) -> Reply {
        self.actions.push(action);
        self
    }

    /// The same reply with `action` inserted before the action at `index`.
    pub fn insert(mut self, index: usize, action: Action) -> Reply {
        let index = index.min(self.actions.len());
        self.actions.insert(index, action);
        self
    }
}

pub type Responder = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

/// The running server; stops when dropped.
pub struct LlmServer {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LlmServer {
    pub fn start(responder: Responder) -> LlmServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = oneshot::channel();
        let recorded = requests.clone();
        let thread = std::thread::Builder::new()
            .name("llm-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(serve(listener, responder, recorded, rx));
            })
            .expect("spawn server thread");
        LlmServer {
            addr,
            requests,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// A server answering with a closure.
    pub fn with(f: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) -> LlmServer {
        LlmServer::start(Arc::new(f))
    }

    /// Answers the n-th request with `replies[n]`; past the end, a 500 that
    /// says the script ran out.
    pub fn script(replies: Vec<Reply>) -> LlmServer {
        LlmServer::with(move |req| {
            replies.get(req.seq).cloned().unwrap_or_else(|| {
                Reply::json(
                    500,
                    &json!({"error": {"message": format!("test server: no reply scripted for request {}", req.seq), "type": "server_error"}}),
                )
            })
        })
    }

    /// `http://127.0.0.1:<port>` (no trailing slash, no `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Polls until `n` requests arrived or `timeout` passed; true if they did.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.request_count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    responder: Responder,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let seq = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let responder = responder.clone();
                let recorded = recorded.clone();
                let seq = seq.clone();
                tokio::spawn(async move {
                    let _ = handle(stream, responder, recorded, seq).await;
                });
            }
        }
    }
}

async fn handle(
    stream: TcpStream,
    responder: Responder,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
    seq: Arc<AtomicUsize>,
) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let Some(mut req) = read_request(&mut reader).await? else {
        return Ok(());
    };
    req.seq = seq.fetch_add(1, Ordering::SeqCst);
    recorded.lock().unwrap().push(req.clone());
    let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| responder(&req)))
        .unwrap_or_else(|_| {
            Reply::json(
                500,
                &json!({"error": {"message": "test responder panicked"}}),
            )
        });
    let mut stream = reader.into_inner();
    write_reply(&mut stream, reply).await
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<RecordedRequest>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; len];
        reader.read_exact(&mut body).await?;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_str(&body).ok();
    Ok(Some(RecordedRequest {
        method,
        path,
        headers,
        body,
        json,
        seq: 0,
        received_at: Instant::now(),
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

async fn write_reply(stream: &mut TcpStream, reply: Reply) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    for action in reply.actions {
        let bytes = match action {
            Action::Body(text) => text.into_bytes(),
            Action::Raw(bytes) => bytes,
            Action::SseEvent { event, data } => {
                let mut text = String::new();
                if let Some(e) = event {
                    text.push_str(&format!("event: {e}\n"));
                }
                for l in data.split('\n') {
                    text.push_str(&format!("data: {l}\n"));
                }
                text.push('\n');
                text.into_bytes()
            }
            Action::Delay(ms) => {
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                continue;
            }
            Action::DropConnection => {
                stream.flush().await?;
                return Ok(());
            }
        };
        if bytes.is_empty() {
            continue;
        }
        stream
            .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
            .await?;
        stream.write_all(&bytes).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    stream.flush().await?;
    stream.shutdown().await
}
