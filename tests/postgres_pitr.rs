//! Point-in-time recovery of a real PostgreSQL cluster (Debian's postgresql-15, installed by
//! `scripts/install-deps.sh`): a protection group holds the data directory and the WAL archive;
//! a full run is taken inside `pg_backup_start` / `pg_backup_stop` while pgbench writes, then
//! rows are committed in two batches around a recorded time T, and a log run captures the
//! archive. Recovering to T and starting a server on the result must show the first batch and
//! not the second.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coldkeep::model::{
    GroupSpec, LogBackup, ObjectKind, ObjectSpec, PolicySpec, Retention, RunRequest, RunType,
    Schedule, TimeUnit, Usecs,
};
use coldkeep::{Engine, InitOptions, RestoreOptions};

/// The newest PostgreSQL server binaries installed the Debian way.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/install-deps.sh")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Gives a path to the `postgres` user when we are root (the server refuses to run as root).
fn give(path: &Path) {
    if running_as_root() {
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status();
        assert!(status.expect("chown").success(), "chown {}", path.display());
    }
}

/// One PostgreSQL server on a Unix socket in a temporary directory.
struct Pg {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
}

impl Pg {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().expect(program);
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn conn_args(&self) -> Vec<String> {
        let host = self.socket_dir.display().to_string();
        ["-h", &host, "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"]
            .map(str::to_owned)
            .to_vec()
    }

    /// One statement's result, unaligned, fields separated by `|`.
    fn sql(&self, query: &str) -> String {
        let out = self
            .command("psql")
            .args(self.conn_args())
            .args(["-v", "ON_ERROR_STOP=1", "-Atq", "-c", query])
            .output()
            .expect("psql");
        assert!(out.status.success(), "{query}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn configure(&self, settings: &str) {
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .expect("postgresql.conf");
        writeln!(conf, "{settings}").expect("write postgresql.conf");
    }

    fn start(&self) {
        // The server's log, where the server may write it.
        let name = self.data.file_name().expect("name").to_string_lossy().into_owned();
        let log = self.socket_dir.join(format!("{name}.log"));
        let (log_path, data) = (log.to_str().expect("utf-8"), self.data.to_str().expect("utf-8"));
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl.args(["-D", data, "-l", log_path, "-w", "-t", "120", "start"]);
        let started = pg_ctl.output().expect("pg_ctl").status.success();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(started, "the server in {data} did not start:\n{log}");
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", self.data.to_str().expect("utf-8"), "-m", "fast", "-w", "stop"]);
    }
}

/// A psql session kept open: `pg_backup_start` and `pg_backup_stop` must share one.
struct Session {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Session {
    fn open(pg: &Pg) -> Self {
        let mut child = pg
            .command("psql")
            .args(pg.conn_args())
            .args(["-v", "ON_ERROR_STOP=1", "-Atq"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("psql session");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines }
    }

    /// Sends one query that returns one line, and reads it.
    fn query(&mut self, q: &str) -> String {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{q}").expect("send");
        stdin.flush().expect("flush");
        self.lines.next().expect("an answer").expect("read")
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[test]
fn a_point_in_time_recovery_of_postgresql_shows_exactly_what_was_committed_then() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (data, archive, socket_dir) = (root.join("data"), root.join("archive"), root.join("sock"));
    // Segments are copied here and renamed into the archive: a log run never sees one half-copied.
    let staging = tmp.path().join("archive.tmp");
    for d in [&data, &archive, &staging, &socket_dir] {
        std::fs::create_dir(d).expect("mkdir");
        give(d);
    }
    let pg =
        Pg { bin: pg_bin(), data: data.clone(), socket_dir: socket_dir.clone(), port: free_port() };
    pg.run(
        "initdb",
        &["-D", data.to_str().expect("utf-8"), "-U", "postgres", "--auth=trust", "--no-sync"],
    );
    pg.configure(&format!(
        "port = {}\nlisten_addresses = ''\nunix_socket_directories = '{}'\nwal_level = replica\n\
         archive_mode = on\n\
         archive_command = 'test ! -f {a}/%f && cp %p {t}/%f && mv {t}/%f {a}/%f'\n",
        pg.port,
        socket_dir.display(),
        a = archive.display(),
        t = staging.display()
    ));
    pg.start();
    pg.sql("CREATE TABLE marker (id serial PRIMARY KEY, batch int NOT NULL)");
    let init = pg.command("pgbench").args(pg.conn_args()).args(["-i", "-q", "-s", "2"]).output();
    assert!(init.expect("pgbench -i").status.success(), "pgbench -i");
    let mut pgbench = pg
        .command("pgbench")
        .args(pg.conn_args())
        .args(["-c", "2", "-T", "600", "-n"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pgbench");

    // A group protecting the data directory and the WAL archive.
    let engine = Engine::init(&root.join("repo"), &InitOptions::unencrypted()).expect("init");
    let mut spec = PolicySpec::incremental(
        "postgres",
        Schedule { unit: TimeUnit::Days, frequency: 1 },
        Retention::days(7),
    );
    spec.backup.log = Some(LogBackup {
        schedule: Schedule { unit: TimeUnit::Minutes, frequency: 15 },
        retention: Retention::days(7),
    });
    let policy = engine.create_policy(spec).expect("policy");
    let objects = vec![
        ObjectSpec::new("data", ObjectKind::DirectoryTree, &data),
        ObjectSpec::new("wal", ObjectKind::LogDirectory, &archive),
    ];
    let group = engine.create_group(GroupSpec::new("pg", policy.id, objects)).expect("group");
    let data_object = group.objects[0].id;
    let run = |run_type| {
        let started = engine.start_run(group.id, RunRequest::new(run_type)).expect("start");
        let done = engine.wait_run(group.id, started.id).expect("wait");
        assert!(done.status.is_success(), "{run_type} run: {:?} {:?}", done.status, done.message);
        done
    };

    // The full run, inside a non-exclusive base backup, while pgbench writes.
    let mut session = Session::open(&pg);
    session.query("SELECT pg_backup_start('coldkeep', true);");
    run(RunType::Full);
    let label = session
        .query("SELECT encode(convert_to(labelfile, 'UTF8'), 'hex') FROM pg_backup_stop(true);");
    let backup_label = hex_decode(&label);
    drop(session.child.stdin.take());
    session.child.wait().expect("psql");

    // Batch 1, then T, then batch 2.
    pg.sql("INSERT INTO marker (batch) SELECT 1 FROM generate_series(1, 100)");
    std::thread::sleep(Duration::from_millis(1500));
    let t = pg.sql("SELECT t::text || '|' || (extract(epoch FROM t) * 1000000)::bigint FROM (SELECT clock_timestamp() AS t) s");
    let (t_text, t_usecs) = t.split_once('|').expect("time");
    let at = Usecs(t_usecs.parse().expect("usecs"));
    std::thread::sleep(Duration::from_millis(1500));
    pg.sql("INSERT INTO marker (batch) SELECT 2 FROM generate_series(1, 100)");
    assert_eq!(pg.sql("SELECT count(*) FROM marker"), "200");

    // Every WAL segment up to now archived, then the log run.
    let segment = pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
    let deadline = Instant::now() + Duration::from_mins(1);
    while !archive.join(&segment).exists() {
        assert!(Instant::now() < deadline, "segment {segment} never archived");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = run(RunType::Log);
    assert!(log.objects[1].log_range.expect("range").to_usecs >= at);
    pgbench.kill().expect("stop pgbench");
    pgbench.wait().expect("reap pgbench");
    pg.stop();

    // Recover to T and start a server there.
    let (restored, wal) = (root.join("restored"), root.join("restored-wal"));
    let pitr = engine
        .recover_point_in_time(data_object, at, &restored, &wal, &RestoreOptions::default())
        .expect("point-in-time recovery");
    assert_eq!(pitr.plan.logs.run, log.id);
    for leftover in ["postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(restored.join(leftover));
    }
    for entry in std::fs::read_dir(restored.join("pg_wal")).expect("pg_wal") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::remove_file(path).expect("clear pg_wal");
        }
    }
    std::fs::write(restored.join("backup_label"), backup_label).expect("backup_label");
    std::fs::write(restored.join("recovery.signal"), b"").expect("recovery.signal");
    let recovered =
        Pg { bin: pg.bin.clone(), data: restored.clone(), socket_dir, port: free_port() };
    recovered.configure(&format!(
        "port = {}\narchive_mode = off\nrestore_command = 'cp {}/%f %p'\n\
         recovery_target_time = '{t_text}'\nrecovery_target_action = 'promote'\n",
        recovered.port,
        wal.display()
    ));
    // The restore created the target with the data directory's own mode, 0700, as PostgreSQL
    // requires.
    give(&restored);
    give(&wal);
    recovered.start();
    let deadline = Instant::now() + Duration::from_mins(2);
    while recovered.sql("SELECT pg_is_in_recovery()") != "f" {
        assert!(Instant::now() < deadline, "recovery never finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows = recovered.sql("SELECT count(*) FILTER (WHERE batch = 1) || '|' || count(*) FILTER (WHERE batch = 2) FROM marker");
    recovered.stop();
    assert_eq!(rows, "100|0", "the recovered cluster holds what was committed at {t_text}");
}
