//! `cimguard mof check` as a user runs it: the built binary on the DMTF schema and on a broken
//! file.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

const CIMGUARD: &str = env!("CARGO_BIN_EXE_cimguard");

fn schema_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/dmtf/cim-schema-2.41"
    ))
}

#[test]
fn checks_the_dmtf_schema() {
    let output = Command::new(CIMGUARD)
        .args(["mof", "check"])
        .arg(schema_dir().join("cim_schema_2.41.0.mof"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\nclass CIM_ComputerSystem : CIM_System\n"));
    assert_eq!(stdout.lines().next(), Some("qualifier Association"));
    assert_eq!(
        stdout.lines().last(),
        Some("compiled 70 qualifier declarations, 1438 classes, 0 instances")
    );
}

#[test]
fn reports_located_errors_with_exit_status_1() {
    let dir = std::env::temp_dir().join(format!("cimguard-mof-check-{}", std::process::id()));
    fs::create_dir_all(dir.join("inc")).unwrap();
    fs::write(
        dir.join("inc/qualifiers.mof"),
        "Qualifier Key : boolean = false, Scope(property);\n",
    )
    .unwrap();
    let broken = dir.join("broken.mof");
    fs::write(
        &broken,
        "#pragma include (\"qualifiers.mof\")\nclass A {\n  [Key] uint8 Id = 300;\n};\n",
    )
    .unwrap();
    let output = Command::new(CIMGUARD)
        .args(["mof", "check", "-I"])
        .arg(dir.join("inc"))
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:3:20: error: 300 is out of range for uint8",
        broken.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    // Without -I the include is not found, and that is located too.
    let output = Command::new(CIMGUARD)
        .args(["mof", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:1:1: error: cannot include", broken.display())),
        "{stderr}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reports_what_validation_finds_with_exit_status_1() {
    let dir = std::env::temp_dir().join(format!("cimguard-mof-validate-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dangling.mof");
    // The compiler accepts a class named by EmbeddedInstance before it exists (an include order
    // may declare it later); validation then finds it never was.
    fs::write(
        &file,
        "Qualifier EmbeddedInstance : string = null, Scope(property, method, parameter);\n\
         class A {\n  [EmbeddedInstance(\"B_Missing\")] string Data;\n};\n",
    )
    .unwrap();
    let output = Command::new(CIMGUARD)
        .args(["mof", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: root/cimv2: property A.Data names class B_Missing, which does not exist"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("1 error(s)"), "{stderr}");
    fs::remove_dir_all(&dir).unwrap();
}
