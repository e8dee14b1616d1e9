//! A throw-away PostgreSQL cluster for tests that need the real engine:
//! `initdb` into a temporary directory, `pg_ctl start` on a free loopback
//! port, one database, and `pg_ctl stop` plus removal when dropped. No
//! system service is used or touched.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (as in
//! CI) the cluster runs as the `postgres` system account that Debian's
//! package creates, through `runuser`. A missing PostgreSQL is a failure
//! that says how to install it, never a skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The account the cluster runs as when the tests run as root.
const SERVICE_ACCOUNT: &str = "postgres";
/// How long `pg_ctl` may take to start or stop the cluster.
const PG_CTL_WAIT_SECONDS: &str = "60";

/// A running cluster; stopped and removed on drop.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `Some(account)` when commands run through `runuser -u account`.
    run_as: Option<&'static str>,
}

impl Postgres {
    /// Creates and starts a cluster with a database named `gotalk`.
    pub fn start() -> Postgres {
        let bin = find_bin();
        let run_as = is_root().then_some(SERVICE_ACCOUNT);
        let dir = temp_dir();
        if let Some(account) = run_as {
            let status = Command::new("chown")
                .arg(format!("{account}:"))
                .arg(&dir)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown {} to {account}", dir.display());
        }
        let pg = Postgres {
            dir,
            bin,
            port: free_port(),
            run_as,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data().to_str().expect("utf-8 path"),
                "-U",
                "gotalk",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        // Only this cluster's own directory and port: no system socket dir.
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = on\nmax_connections = 200\nshared_buffers = 64MB\n",
            pg.port,
            pg.dir.display()
        );
        pg.append_conf(&conf);
        pg.pg_ctl_start();
        pg.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "gotalk",
                "gotalk",
            ],
        );
        pg
    }

    /// One cluster for the whole test binary, started on first use. A
    /// static is never dropped, so a watchdog process stops and removes
    /// the cluster once this process has exited, however it ended.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| {
            let pg = Postgres::start();
            pg.watch_for_exit();
            pg
        })
    }

    /// A token key file path inside the cluster's directory (removed with
    /// it), for nodes that must share one key.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("secret.key")
    }

    /// [`Postgres::key_file`], written once before any server uses it:
    /// servers started at the same moment would otherwise race to create
    /// it (and a server given no key file would make one in the working
    /// directory).
    pub fn ready_key_file(&self) -> PathBuf {
        static WRITTEN: OnceLock<PathBuf> = OnceLock::new();
        WRITTEN
            .get_or_init(|| {
                use std::io::{Read, Write};
                use std::os::unix::fs::OpenOptionsExt;
                let mut key = [0u8; 32];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut key))
                    .expect("read /dev/urandom");
                let path = self.key_file();
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .and_then(|mut f| f.write_all(&key))
                    .expect("write the token key file");
                path
            })
            .clone()
    }

    /// A new, empty database in this cluster; returns its URL.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("gotalk_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name}"));
        format!("postgres://gotalk@127.0.0.1:{}/{name}", self.port)
    }

    /// Starts `sh` to wait for this process to end, then stop the cluster
    /// and remove its directory.
    fn watch_for_exit(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match self.run_as {
            Some(account) => format!("runuser -u {account} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             cd '{dir}' && {stop} -D '{data}' -m immediate stop; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display(),
            data = self.data().display(),
        );
        // It outlives this process on purpose: never waited for.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the cluster's watchdog");
    }

    /// `postgres://gotalk@127.0.0.1:PORT/gotalk`.
    pub fn url(&self) -> String {
        format!("postgres://gotalk@127.0.0.1:{}/gotalk", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `pg_ctl restart -m immediate`: a crash-like stop (no checkpoint;
    /// every open connection is cut), then a start that runs recovery.
    pub fn restart_immediate(&self) {
        self.stop_immediate();
        self.pg_ctl_start();
    }

    /// Stops the cluster at once (connections cut); [`Postgres::start_again`]
    /// brings it back on the same port and data.
    pub fn stop_immediate(&self) {
        self.pg_ctl(&["stop", "-m", "immediate"]);
    }

    pub fn start_again(&self) {
        self.pg_ctl_start();
    }

    /// Runs one SQL statement with `psql` and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.output(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "gotalk",
                "-d",
                "gotalk",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn append_conf(&self, text: &str) {
        use std::io::Write;
        let path = self.data().join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        file.write_all(text.as_bytes())
            .expect("write postgresql.conf");
    }

    /// Starts the postmaster with its output in a log file: a server that
    /// inherited this process's pipes would keep them open for its life.
    fn pg_ctl_start(&self) {
        let log = self.dir.join("postgres.log");
        self.pg_ctl(&["start", "-l", log.to_str().expect("utf-8 path")]);
        // pg_ctl -w waits for the postmaster; be sure TCP answers too.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let mut all = vec![
            "-D",
            data.to_str().expect("utf-8 path"),
            "-w",
            "-t",
            PG_CTL_WAIT_SECONDS,
        ];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    fn run(&self, program: &str, args: &[&str]) {
        self.output(program, args);
    }

    /// Runs one of PostgreSQL's programs (as the service account when the
    /// tests are root) and fails the test, with its output, if it fails.
    fn output(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some(account) => {
                let mut c = Command::new("runuser");
                c.args(["-u", account, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        // The service account cannot enter root's working directory.
        cmd.args(args).current_dir(&self.dir);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let path = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"];
        let _ = match self.run_as {
            Some(account) => Command::new("runuser")
                .args(["-u", account, "--"])
                .arg(&path)
                .args(args)
                .current_dir(&self.dir)
                .output(),
            None => Command::new(&path).args(args).output(),
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`: Debian keeps them under
/// `/usr/lib/postgresql/<version>/bin` (newest version wins), others put
/// them on `PATH`.
fn find_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed: \
             `apt-get install postgresql` (scripts/install-test-deps.sh does it)"
        )
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A fresh directory the service account can enter: under /tmp, not under
/// a root-only temp dir.
fn temp_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = Path::new("/tmp").join(format!("gotalk-pg-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the cluster's directory");
    dir
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
