//! Real processes for the scale-out tests: a throw-away PostgreSQL cluster (initdb +
//! pg_ctl, as `scripts/test.sh` does), a `redis-server` on a free loopback port, and
//! `eidgate serve` processes (the binary under test) sharing them and one SoftHSM token.
//! Every process is stopped when its handle drops. Missing binaries fail the test: CI
//! must run these (scripts/install-deps.sh installs postgresql and redis-server).
//! Self-contained (its own SoftHSM token directory per cluster) so that the load bench
//! (`benches/load.rs`) includes the same file.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// How long a process may take to come up before the test fails.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A free loopback port (bound and released; the process that gets it binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Waits (bounded) until `ready` holds; readiness polling, not a timing assertion.
pub async fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "{what} not ready within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A PostgreSQL cluster of its own.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
    as_postgres: bool,
}

impl Postgres {
    /// initdb + start (`fsync=off` for speed; `synchronous_commit=on` as in production).
    pub async fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed (scripts/install-deps.sh test)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max_by_key(|p| {
                p.parent()
                    .and_then(|v| v.file_name())
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0)
            })
            .expect("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new()
            .prefix("eidgate-scale-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown").arg("postgres:").arg(dir.path()).status().unwrap();
            assert!(ok.success(), "chown of the PostgreSQL directory");
        }
        let pg = Self {
            port: free_port(),
            bin,
            dir,
            as_postgres,
        };
        let out = pg
            .command("initdb")
            .args(["-U", "postgres", "-A", "trust", "-D"])
            .arg(pg.data())
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        pg.pg_ctl("start");
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=on -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let mut c = self.command("pg_ctl");
        c.arg("-D").arg(self.data()).args(["-w", "-m", "fast", "-l"]);
        c.arg(self.dir.path().join("log")).args(["-o", &options, action]);
        let out = c.stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {action}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postgres://` URL of the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Fast shutdown (in-flight transactions roll back; committed ones stay).
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Starts again on the same port and data.
    pub fn start_again(&self) {
        self.pg_ctl("start");
    }

    /// Runs one query through `psql` and returns its unaligned output.
    pub fn query(&self, sql: &str) -> String {
        let out = self
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-At",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut c = self.command("pg_ctl");
        c.arg("-D").arg(self.data()).args(["-m", "immediate", "stop"]);
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// A `redis-server` of its own (no persistence: a restart loses every key, as a failover
/// to an empty replica would).
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts on a free port.
    pub async fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            child: None,
        };
        r.start_again().await;
        r
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port; returns once it accepts connections.
    pub async fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed (scripts/install-deps.sh test)");
        self.child = Some(child);
        let port = self.port;
        wait_until("redis-server", START_LIMIT, || port_open(port)).await;
    }

    /// Kills the server; returns once the port is closed.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let port = self.port;
        wait_until("redis-server stop", START_LIMIT, || !port_open(port)).await;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What every node of a cluster shares.
pub struct Shared {
    pub dir: TempDir,
    pub softhsm_conf: PathBuf,
    pub database_url: String,
    pub redis_url: String,
    pub issuer: String,
    pub token_label: String,
}

/// One `eidgate serve` process.
pub struct Node {
    pub url: String,
    pub config: PathBuf,
    child: Option<Child>,
    pub port: u16,
}

/// The configuration file of a node (or of the CLI on the same deployment).
pub fn write_config(shared: &Shared, name: &str, port: u16) -> PathBuf {
    let data = shared.dir.path().join(name);
    std::fs::create_dir_all(&data).unwrap();
    let text = format!(
        r#"issuer = "{issuer}"
listen = "127.0.0.1:{port}"
data_dir = "{data}"
instances = 2
[tls]
mode = "off"
[database]
url = "{db}"
max_connections = 8
[ephemeral]
url = "{redis}"
timeout = "300ms"
[hsm]
module = "{module}"
token_label = "{label}"
pin_file = "{pin}"
auto_init = true
[login]
ip_attempts = 1000000
flows_per_address = 1000000
# Many new browsers log one holder in at once (drain test, load bench): every attempt is
# reserved on the person before argon2, so lift the free attempts.
backoff_free = 1000000
[limits]
# The tests and the load bench are one loopback address: lift the per-IP limits.
rate_per_ip = 0
connections_per_ip = 10000
[audit]
sink_interval = "200ms"
[operators]
# The helpdesk operator of these tests logs in with a password (low), at load.
minimum_acr = "low"
"#,
        issuer = shared.issuer,
        data = data.display(),
        db = shared.database_url,
        redis = shared.redis_url,
        module = pkcs11_module().display(),
        label = shared.token_label,
        pin = shared.dir.path().join("hsm-user.pin").display(),
    );
    let path = data.join("eidgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The PKCS#11 module (`EIDGATE_TEST_PKCS11_MODULE` overrides SoftHSM's).
pub fn pkcs11_module() -> PathBuf {
    std::env::var_os("EIDGATE_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// Runs `eidgate <args> --config <config>`; returns (exit code, stdout, stderr).
pub fn cli(shared: &Shared, config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eidgate"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("SOFTHSM2_CONF", &shared.softhsm_conf)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Node {
    /// Starts `eidgate serve` on `port`; returns once `/healthz` answers.
    pub async fn start(shared: &Shared, name: &str, port: u16) -> Self {
        let config = write_config(shared, name, port);
        let log = std::fs::File::create(shared.dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_eidgate"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("SOFTHSM2_CONF", &shared.softhsm_conf)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut node = Self {
            url: format!("http://127.0.0.1:{port}"),
            config,
            child: Some(child),
            port,
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(node.at("/healthz")).await {
                if r.status() == 200 {
                    break;
                }
            }
            if let Some(status) = node.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                let log = std::fs::read_to_string(shared.dir.path().join(format!("{name}.log"))).unwrap_or_default();
                panic!("eidgate {name} exited with {status}:\n{log}");
            }
            assert!(started.elapsed() < START_LIMIT, "eidgate {name} did not start");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        node
    }

    /// A handle on a server running in this process (no child to stop).
    pub fn in_process(url: &str) -> Self {
        let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Self {
            url: url.to_owned(),
            config: PathBuf::new(),
            child: None,
            port,
        }
    }

    /// A URL on this node.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGKILL, then reaps.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (bounded) for the process to exit; its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        let started = Instant::now();
        loop {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            assert!(started.elapsed() < START_LIMIT, "eidgate did not exit");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// PostgreSQL + Redis + a shared directory and token, ready for nodes.
pub struct Cluster {
    pub pg: Postgres,
    pub redis: Redis,
    pub shared: Shared,
}

impl Cluster {
    /// Starts PostgreSQL and Redis; the issuer is `http://127.0.0.1:{first_port}`.
    pub async fn start(first_port: u16) -> Self {
        let (pg, redis) = (Postgres::start().await, Redis::start().await);
        let dir = tempfile::Builder::new()
            .prefix("eidgate-scale-")
            .tempdir_in("/tmp")
            .unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let softhsm_conf = dir.path().join("softhsm2.conf");
        std::fs::write(&softhsm_conf, eidgate::hsm::init::render_softhsm_conf(&tokens)).unwrap();
        let shared = Shared {
            database_url: pg.url(),
            redis_url: redis.url(),
            issuer: format!("http://127.0.0.1:{first_port}"),
            token_label: "scale".into(),
            softhsm_conf,
            dir,
        };
        Self { pg, redis, shared }
    }

    /// Imports `doc` through `eidgate import` (before or while the nodes run).
    pub fn import(&self, doc: &Value) {
        let config = write_config(&self.shared, "cli", free_port());
        let file = self
            .shared
            .dir
            .path()
            .join(format!("import-{}.json", uuid::Uuid::new_v4().simple()));
        std::fs::write(&file, doc.to_string()).unwrap();
        let (code, out, err) = cli(&self.shared, &config, &["import", file.to_str().unwrap(), "--json"]);
        assert_eq!(code, 0, "import: {out} {err}");
    }

    /// `eidgate audit verify` on the shared database, against every instance's sink (each
    /// witnesses the checkpoints it signed): (exit code, stdout).
    pub fn audit_verify(&self) -> (i32, String) {
        let config = write_config(&self.shared, "cli", free_port());
        let mut args = vec!["audit".to_owned(), "verify".to_owned()];
        for entry in std::fs::read_dir(self.shared.dir.path()).unwrap() {
            let sink = entry.unwrap().path().join("audit-sink.jsonl");
            if sink.exists() {
                args.push("--sink".to_owned());
                args.push(sink.display().to_string());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = cli(&self.shared, &config, &args);
        (code, format!("{out}{err}"))
    }
}
