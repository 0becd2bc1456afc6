//! The agent's local socket: `cmcld` serves its agent on STATE_DIR/cimxml.sock as well as
//! over HTTPS, and the cm* commands use it when CIMGUARD_URL is not set. Root needs no
//! password there (the kernel tells the agent who connects); any other user is refused.
//!
//! Needs `cargo build --bins` and root (the refused user is nobody, 65534, reached with
//! `setpriv`); the test fails, never skips, without them.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cimguard_tests::cluster::TestCluster;
use cimguard_tests::pyagent::{describe, output_within};
use cimguard_tests::raw_http;
use cimguard_tests::requests::imethod_call;

const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);
/// Long enough for a formation and a package start under CI load.
const BOUND: Duration = Duration::from_secs(60);
const ADMIN: (&str, &str) = ("admin", "admin-secret-1");
/// The user the socket refuses.
const NOBODY: u32 = 65534;
/// Set in a copy of this test binary run as [`NOBODY`]: the socket it sends one raw
/// request to ([`raw_request_helper`]).
const RAW_SOCKET_VARIABLE: &str = "CIMGUARD_TEST_LOCAL_SOCKET";

/// The agent's socket of node `k`.
fn socket(cluster: &TestCluster, k: usize) -> PathBuf {
    cluster.dir(k).join("cimxml.sock")
}

/// `name ARGS` as a client of the socket `socket` (no CIMGUARD_URL, no credentials),
/// through `wrapper` (a command and its arguments that run the rest) when given.
fn command(socket: &Path, wrapper: &[&str], name: &str, args: &[&str]) -> Output {
    let program = cimguard_tests::agent::binary(name).unwrap_or_else(|e| panic!("{e}"));
    let mut command = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut command = Command::new(first);
            command.args(rest).arg(program);
            command
        }
        None => Command::new(program),
    };
    command
        .args(args)
        .env_remove("CIMGUARD_URL")
        .env_remove("CIMGUARD_USER")
        .env_remove("CIMGUARD_PASSWORD")
        .env_remove("CIMGUARD_CA")
        .env("CIMGUARD_SOCKET", socket);
    output_within(&mut command, Duration::from_secs(400)).unwrap_or_else(|e| panic!("{e}"))
}

/// `name ARGS` as root over node `k`'s socket, which must succeed: its standard output.
fn succeeds(cluster: &TestCluster, k: usize, name: &str, args: &[&str]) -> String {
    let output = command(&socket(cluster, k), &[], name, args);
    assert!(
        output.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        describe(&output),
        cluster.log(k)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The `-f line` value of `attribute` (`package:pkg1|state`), asked over node `k`'s socket.
fn line_value(cluster: &TestCluster, k: usize, attribute: &str) -> Option<String> {
    succeeds(cluster, k, "cmviewcl", &["-f", "line"])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{attribute}=")).map(str::to_owned))
}

/// One EnumerateInstanceNames of HP_SGCluster over `socket` with `authorization`, from this
/// process: the answer's status line and `PGErrorDetail` (percent-decoded), and its body.
fn raw_request(socket: &Path, authorization: Option<&str>) -> (String, String, String) {
    let body = imethod_call(
        1,
        "EnumerateInstanceNames",
        "root/cimv2",
        r#"<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="HP_SGCluster"/></IPARAMVALUE>"#,
    );
    let mut headers = vec![
        ("Content-Type", "application/xml; charset=\"utf-8\""),
        ("CIMProtocolVersion", "1.0"),
        ("CIMOperation", "MethodCall"),
        ("CIMMethod", "EnumerateInstanceNames"),
        ("CIMObject", "root%2Fcimv2"),
        ("Connection", "close"),
    ];
    if let Some(authorization) = authorization {
        headers.push(("Authorization", authorization));
    }
    let request = raw_http::request(
        "POST",
        "/cimom",
        "localhost",
        &headers,
        Some(body.as_bytes()),
    );
    let mut stream = UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", socket.display()));
    stream
        .set_read_timeout(Some(raw_http::READ_TIMEOUT))
        .expect("a read timeout");
    stream.write_all(&request).expect("the request is sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("the answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    let detail = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("PGErrorDetail")
                .then(|| percent_decode(value.trim()))
        })
        .unwrap_or_default();
    (status, detail, body.to_owned())
}

/// `text` without its terminal color sequences (`ESC [ ... m`: the agent's log lines have
/// them).
fn without_colors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character == '\u{1b}' {
            for skipped in characters.by_ref() {
                if skipped.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(character);
        }
    }
    out
}

/// `%XX` escapes decoded (the agent escapes every non-alphanumeric byte of a detail).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Not a test of its own: in a copy of this binary run as another user with
/// [`RAW_SOCKET_VARIABLE`] set, sends [`raw_request`] from that user and prints the answer;
/// otherwise does nothing (ignored in a normal run; the copy is run with `--ignored`).
#[test]
#[ignore = "a helper run by a_local_socket_serves_root, not a test of its own"]
fn raw_request_helper() {
    let Some(socket) = std::env::var_os(RAW_SOCKET_VARIABLE) else {
        return;
    };
    let (status, detail, _) =
        raw_request(Path::new(&socket), Some(&raw_http::basic(ADMIN.0, ADMIN.1)));
    println!("status: {status}");
    println!("detail: {detail}");
}

/// A cluster of three nodes (two would need a lock) with agents, and pkg1 (auto_run, n1
/// first).
fn cluster() -> TestCluster {
    let mut cluster = TestCluster::configure(3, MEMBER_TIMEOUT, "");
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.add_package(
        "pkg1",
        "package_name pkg1\npackage_type failover\nnode_name n1\nnode_name n2\nnode_name n3\nauto_run yes\n\
         service_name svc\nservice_cmd \"exec sleep 100000\"\n",
    );
    cluster.start_all();
    cluster
}

#[test]
fn root_runs_the_commands_over_the_local_socket_and_other_users_are_refused() {
    let mut cluster = cluster();
    cluster.wait_for(BOUND, "a formed cluster", |c| {
        (1..=3).all(|k| c.members(k).is_some_and(|(m, _)| m.len() == 3))
    });
    // The agent's socket is there once its HTTPS listener is, mode 0600.
    cluster.wait_for(BOUND, "n1's local socket", |c| socket(c, 1).exists());
    let path = socket(&cluster, 1);
    let mode = std::fs::metadata(&path)
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());

    // cmviewcl as root, without CIMGUARD_URL or credentials.
    cluster.wait_for(BOUND, "pkg1 running, as cmviewcl says", |c| {
        line_value(c, 1, "package:pkg1|state").as_deref() == Some("running")
    });
    let table = succeeds(&cluster, 1, "cmviewcl", &[]);
    assert!(table.contains("testcluster"), "{table}");
    assert!(table.contains("pkg1"), "{table}");

    // A state change through the socket: cmhaltpkg, audited as root of the local socket.
    succeeds(&cluster, 1, "cmhaltpkg", &["pkg1"]);
    cluster.wait_for(BOUND, "pkg1 halted", |c| {
        line_value(c, 1, "package:pkg1|state").as_deref() == Some("halted")
    });
    assert_eq!(cluster.owners(1, "pkg1"), Some(Vec::new()));
    let log = without_colors(&cluster.log(1));
    assert!(
        log.lines().any(|l| l.contains("audit")
            && l.contains("principal=root (uid 0, local socket)")
            && l.contains("ok=true")),
        "no audit line of root on the local socket:\n{log}"
    );

    // Basic credentials on the socket change nothing: even wrong ones, root is served.
    let (status, detail, body) = raw_request(&path, Some(&raw_http::basic("admin", "wrong")));
    assert_eq!(status, "HTTP/1.1 200 OK", "{detail}");
    assert!(body.contains("testcluster"), "{body}");

    // Another user: the socket made reachable for nobody for this check alone (a hard link
    // in a folder it may enter, and the mode opened), then restored.
    let open = tempfile::tempdir().expect("a folder");
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755))
        .expect("folder permissions");
    let reachable = open.path().join("cimxml.sock");
    std::fs::hard_link(&path, &reachable).expect("a link to the socket (same file system)");
    std::fs::set_permissions(&reachable, std::fs::Permissions::from_mode(0o666))
        .expect("socket permissions");
    let as_nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    // A raw request from nobody, carrying the administrator's valid password: refused.
    let test_binary = std::env::current_exe().expect("this test binary");
    let mut helper = Command::new(as_nobody[0]);
    helper
        .args(&as_nobody[1..])
        .arg(&test_binary)
        .args([
            "--exact",
            "raw_request_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RAW_SOCKET_VARIABLE, &reachable);
    let output =
        output_within(&mut helper, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("status: HTTP/1.1 403 Forbidden"),
        "the raw request of uid {NOBODY}:\n{}",
        describe(&output)
    );
    assert!(
        printed.contains(&format!(
            "detail: uid {NOBODY} may not use the agent's local socket"
        )),
        "{}",
        describe(&output)
    );
    // cmviewcl as nobody: one clear line, exit status 1.
    let output = command(&reachable, &as_nobody, "cmviewcl", &[]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        error.contains("HTTP 403")
            && error.contains(&format!(
                "uid {NOBODY} may not use the agent's local socket"
            ))
            && error.trim_end().lines().count() == 1,
        "{error}"
    );
    std::fs::remove_file(&reachable).expect("the link removed");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("socket permissions restored");

    // The package runs again through the socket.
    succeeds(&cluster, 1, "cmrunpkg", &["-n", "n1", "pkg1"]);
    cluster.wait_for(BOUND, "pkg1 up again", |c| {
        c.owners(1, "pkg1").is_some_and(|owners| owners == ["n1"])
    });
}

#[test]
fn without_an_agent_the_commands_say_where_they_looked_on_one_line() {
    let folder = tempfile::tempdir().expect("a folder");
    let missing = folder.path().join("cimxml.sock");
    let output = command(&missing, &[], "cmviewcl", &[]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        error.starts_with(&format!(
            "cmviewcl: cannot reach the local agent at {}: ",
            missing.display()
        )) && error.contains("set CIMGUARD_URL")
            && error.trim_end().lines().count() == 1,
        "{error}"
    );
    // A socket nobody listens on: refused, the same one line.
    drop(std::os::unix::net::UnixListener::bind(&missing).expect("a socket"));
    let output = command(&missing, &[], "cmhaltpkg", &["pkg1"]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        error.contains(&format!(
            "cannot reach the local agent at {}: ",
            missing.display()
        )) && error.trim_end().lines().count() == 1,
        "{error}"
    );
}

/// Set in a copy of this test binary run as [`NOBODY`]: where [`planted_server_helper`]
/// serves a socket of its own.
const PLANTED_SOCKET_VARIABLE: &str = "CIMGUARD_TEST_PLANTED_SOCKET";

/// Not a test of its own: in a copy of this binary run as another user with
/// [`PLANTED_SOCKET_VARIABLE`] set, serves a socket there, prints `ready`, then accepts one
/// connection and prints `received N` (the bytes it was sent until the client closed).
#[test]
#[ignore = "a helper run by a_socket_planted_by_another_user_is_not_the_agent, not a test"]
fn planted_server_helper() {
    let Some(socket) = std::env::var_os(PLANTED_SOCKET_VARIABLE) else {
        return;
    };
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("the planted socket");
    listener
        .set_nonblocking(true)
        .expect("a listener that does not block");
    println!("ready");
    // Bounded: without a client within a minute the helper ends (and the test with it).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut connection = loop {
        match listener.accept() {
            Ok((connection, _)) => break connection,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= deadline {
                    println!("no client");
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    connection
        .set_nonblocking(false)
        .expect("a blocking connection");
    connection
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    let mut received = Vec::new();
    let _ = connection.read_to_end(&mut received);
    println!("received {}", received.len());
}

#[test]
fn a_socket_planted_by_another_user_is_not_the_agent_and_gets_nothing() {
    // A world-writable folder where nobody (65534) serves a socket of its own.
    let folder = tempfile::tempdir().expect("a folder");
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o1777))
        .expect("the folder opened to every user");
    let planted = folder.path().join("cimxml.sock");
    let test_binary = std::env::current_exe().expect("this test binary");
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&test_binary)
        .args([
            "--exact",
            "planted_server_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PLANTED_SOCKET_VARIABLE, &planted)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv runs");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        child.stdout.take().expect("its output"),
    ))
    .map_while(Result::ok);
    assert!(
        // (libtest writes `test planted_server_helper ... ` before the helper's output.)
        lines.by_ref().any(|line| line.ends_with("ready")),
        "the planted server did not start"
    );
    let output = command(&planted, &[], "cmviewcl", &[]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        error.contains(&format!(
            "{} is served by uid {NOBODY}, neither root nor this user: not the agent",
            planted.display()
        )) && error.trim_end().lines().count() == 1,
        "{error}"
    );
    // The planted server was sent nothing: the command left before its request.
    let received = lines.find_map(|line| line.find("received").map(|at| line[at..].to_owned()));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(received.as_deref(), Some("received 0"));
}
