//! `cimguard user ...` as an administrator runs it: the built binary editing a users file in a
//! temporary directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CIMGUARD: &str = env!("CARGO_BIN_EXE_cimguard");

/// A fresh directory for one test.
fn directory(test: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("cimguard-user-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(&directory).unwrap();
    directory
}

/// Runs `cimguard user ARGS --users-file FILE` with `stdin` as standard input.
fn user(file: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(CIMGUARD)
        .arg("user")
        .args(args)
        .arg("--users-file")
        .arg(file)
        .env_remove("CIMGUARD_USERS_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    // A command that fails before reading its input closes the pipe first.
    if let Err(error) = written {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(output.status.success(), "{}", stderr(output));
}

#[test]
fn adds_lists_changes_and_removes_users() {
    let directory = directory("edit");
    let file = directory.join("users");
    let add = user(
        &file,
        &["add", "alice", "--role", "full_admin", "--password-stdin"],
        "s3cret\n",
    );
    assert_success(&add);
    assert_eq!(stdout(&add), "added alice (FULL_ADMIN)\n");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("alice:FULL_ADMIN:$argon2id$v=19$m=19456,t=2,p=1$"),
        "{text}"
    );
    assert!(!text.contains("s3cret"));

    assert_success(&user(
        &file,
        &["add", "operator", "--role", "MONITOR", "--pam"],
        "",
    ));
    let list = user(&file, &["list"], "");
    assert_success(&list);
    assert_eq!(
        stdout(&list),
        "alice     FULL_ADMIN     password\noperator  MONITOR        pam\n"
    );

    assert_success(&user(&file, &["set-role", "operator", "package_admin"], ""));
    assert_success(&user(&file, &["remove", "alice"], ""));
    assert_eq!(
        stdout(&user(&file, &["list"], "")),
        "operator  PACKAGE_ADMIN  pam\n"
    );
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "operator:PACKAGE_ADMIN:pam\n"
    );
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn reads_the_users_file_from_the_environment() {
    let directory = directory("environment");
    let file = directory.join("users");
    fs::write(&file, "bob:MONITOR:pam\n").unwrap();
    let output = Command::new(CIMGUARD)
        .args(["user", "list"])
        .env("CIMGUARD_USERS_FILE", &file)
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), "bob  MONITOR        pam\n");
    fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn refuses_bad_input_with_exit_status_1_and_leaves_the_file_unchanged() {
    let directory = directory("errors");
    let file = directory.join("users");
    assert_success(&user(
        &file,
        &["add", "alice", "--role", "MONITOR", "--password-stdin"],
        "pw\n",
    ));
    let before = fs::read_to_string(&file).unwrap();
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["add", "alice", "--role", "MONITOR", "--password-stdin"],
            "pw\n",
            "user \"alice\" already exists",
        ),
        (
            &["add", "bad:name", "--role", "MONITOR", "--password-stdin"],
            "pw\n",
            "invalid user name \"bad:name\"",
        ),
        (
            &["add", "bob", "--role", "MONITOR", "--password-stdin"],
            "\n",
            "the password is empty",
        ),
        (
            &["add", "bob", "--role", "MONITOR"],
            "",
            "standard input is not a terminal",
        ),
        (&["remove", "nobody"], "", "no user \"nobody\""),
        (&["set-role", "nobody", "MONITOR"], "", "no user \"nobody\""),
    ];
    for (args, stdin, message) in cases {
        let output = user(&file, args, stdin);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), before, "{args:?}");
    }
    // A bad role is refused by the argument parser, naming the roles.
    let output = user(
        &file,
        &["add", "bob", "--role", "ADMIN", "--password-stdin"],
        "pw\n",
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("expected MONITOR, PACKAGE_ADMIN or FULL_ADMIN"));
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
    fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn reports_a_missing_or_broken_users_file() {
    let directory = directory("missing");
    let missing = directory.join("missing");
    let output = user(&missing, &["list"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read users file"),
        "{}",
        stderr(&output)
    );
    let broken = directory.join("broken");
    fs::write(&broken, "# ok\nalice:MONITOR\n").unwrap();
    let output = user(&broken, &["remove", "alice"], "");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "cimguard: error: users file line 2: expected name:ROLE:credential\n"
    );
    fs::remove_dir_all(&directory).unwrap();
}
