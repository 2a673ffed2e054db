//! A small Chrome DevTools Protocol client over tokio-tungstenite (no browser download:
//! it drives the system's Debian `chromium`). One browser per test, headless, sandbox
//! off (tests run as root), a fresh profile directory, flat sessions to one page.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::{broadcast, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// How long any single CDP step may take before the test fails (a hang guard, not a
/// timing assertion).
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// A headless Chromium and a CDP connection to it.
pub struct Browser {
    child: tokio::process::Child,
    sink: tokio::sync::Mutex<Sink>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    events: broadcast::Sender<Value>,
    next: AtomicU64,
    _profile: tempfile::TempDir,
}

/// The Chromium binary: `EIDGATE_CHROMIUM` or the Debian package's.
pub fn chromium_path() -> String {
    std::env::var("EIDGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

impl Browser {
    /// Starts Chromium and connects to its DevTools endpoint.
    pub async fn launch() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(chromium_path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--window-size=1000,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (install the Debian chromium package): {e}",
                    chromium_path()
                )
            });
        // Chromium prints its endpoint once it listens.
        let stderr = child.stderr.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let ws_url = tokio::time::timeout(STEP_LIMIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited before DevTools listened");
        })
        .await
        .expect("chromium did not start");
        // Keep draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (stream, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await.unwrap();
        let (sink, mut source) = stream.split();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let (events, _) = broadcast::channel(1024);
        let reader_pending = pending.clone();
        let reader_events = events.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = source.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = value.get("id").and_then(Value::as_u64) {
                    if let Some(tx) = reader_pending.lock().unwrap().remove(&id) {
                        let _ = tx.send(value);
                    }
                } else {
                    let _ = reader_events.send(value);
                }
            }
        });
        Self {
            child,
            sink: tokio::sync::Mutex::new(sink),
            pending,
            events,
            next: AtomicU64::new(1),
            _profile: profile,
        }
    }

    /// Sends a command (to `session` when given) and returns its `result`; panics on an error.
    pub async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.sink
            .lock()
            .await
            .send(Message::Text(msg.to_string()))
            .await
            .unwrap();
        let reply = tokio::time::timeout(STEP_LIMIT, rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method}"))
            .unwrap();
        if let Some(err) = reply.get("error") {
            panic!("{method} failed: {err}");
        }
        reply["result"].clone()
    }

    /// Subscribes to events (before the action that causes them).
    pub fn events(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    /// Opens a page and attaches a flat session to it.
    pub async fn page(&self) -> Page<'_> {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        let session = attached["sessionId"].as_str().unwrap().to_owned();
        let page = Page { browser: self, session };
        page.call("Page.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// One page (tab) with its CDP session.
pub struct Page<'a> {
    browser: &'a Browser,
    /// The flat session id.
    pub session: String,
}

impl Page<'_> {
    /// A command in this page's session.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Waits for the next event `method` of this session on `events`.
    pub async fn next_event(&self, events: &mut broadcast::Receiver<Value>, method: &str) -> Value {
        tokio::time::timeout(STEP_LIMIT, async {
            loop {
                let event = events.recv().await.unwrap();
                if event["method"] == method && event["sessionId"] == self.session.as_str() {
                    return event["params"].clone();
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {method} event"))
    }

    /// Navigates and waits for the load event.
    pub async fn goto(&self, url: &str) {
        let mut events = self.browser.events();
        self.call("Page.navigate", json!({"url": url})).await;
        self.next_event(&mut events, "Page.loadEventFired").await;
    }

    /// Evaluates `expression` (awaiting a promise) and returns its value.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("script failed: {expression}\n{ex}");
        }
        r["result"]["value"].clone()
    }

    /// Waits, inside the page, until `condition` (a JS expression) is true; the page's
    /// `#error` text is reported if it fails.
    pub async fn wait_for(&self, condition: &str) {
        let script = format!(
            "new Promise((resolve, reject) => {{ const t0 = Date.now(); (function poll() {{ \
             let ok = false; try {{ ok = !!({condition}); }} catch (e) {{}} \
             if (ok) return resolve(true); \
             if (Date.now() - t0 > 30000) {{ const e = document.getElementById('error'); \
               return reject(new Error('not reached: {escaped}; page error: ' + (e ? e.textContent : '') + ' ' + (window.eidgateLastError || ''))); }} \
             setTimeout(poll, 50); }})(); }})",
            escaped = condition.replace('\'', "\\'"),
        );
        self.eval(&script).await;
    }

    /// Sets the viewport (CSS pixels; narrow ones as a mobile device).
    pub async fn viewport(&self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await;
    }

    /// Saves a PNG screenshot of the whole page (beyond the viewport) to `path`.
    pub async fn screenshot_page(&self, path: &std::path::Path) {
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let clip = json!({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1});
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
            )
            .await;
        save_png(path, shot["data"].as_str().unwrap());
    }

    /// Runs axe-core (`axe_source`, the text of `axe.min.js`) on the page and returns its
    /// serious and critical violations (id, impact, help, the first nodes).
    pub async fn axe_serious(&self, axe_source: &str) -> Vec<Value> {
        self.eval(&format!("{axe_source};\ntrue")).await;
        let found = self
            .eval(
                "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations \
                 .filter((v) => v.impact === 'serious' || v.impact === 'critical') \
                 .map((v) => ({ id: v.id, impact: v.impact, help: v.help, \
                   nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + (n.failureSummary || '')) })))",
            )
            .await;
        found.as_array().cloned().unwrap_or_default()
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        save_png(path, shot["data"].as_str().unwrap());
    }
}

fn save_png(path: &std::path::Path, base64_png: &str) {
    let png = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, base64_png).unwrap();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, png).unwrap();
}
