//! The load soak (issue 8): 64 clients on keep-alive HTTPS connections to one node's agent of
//! a three-node cluster of real processes (release `cmcld` with its agent, the demo's
//! packages), each running a mix of every kind of operation as fast as it is answered, for
//! ten minutes. Every answer is checked; it reports the errors (there must be none), the
//! operations per second, the latency, and the agent's resident memory every 30 s, so that
//! memory that grows shows.
//!
//! ```sh
//! cargo build --release --bins
//! CIMGUARD_BIN_DIR=$PWD/target/release cargo bench -p cimguard-tests --bench load
//! LOAD_BENCH_SECONDS=30 LOAD_BENCH_CLIENTS=8 CIMGUARD_BIN_DIR=$PWD/target/release \
//!   cargo bench -p cimguard-tests --bench load
//! ```
//!
//! The mix, per client, in turn: EnumerateInstances of HP_SGPackage, EnumerateInstanceNames
//! of HP_SGNode, GetInstance of the cluster, GetClass, EnumerateClassNames, Associators and
//! ReferenceNames of the cluster, ExecQuery (WQL), EnumerateQualifiers, EnumerateClasses,
//! AssociatorNames and References of the cluster, GetQualifier; OpenEnumerateInstances,
//! OpenQueryInstances (CQL), OpenEnumerateInstancePaths, OpenAssociatorInstancePaths and
//! OpenReferenceInstances, each with its pulls (PullInstancesWithPath, PullInstances,
//! PullInstancePaths) one object at a time to the end; OpenAssociatorInstances with nothing
//! returned, then CloseEnumeration; GetView (an extrinsic method); and an indication filter
//! created, read back, modified (ModifyInstance, its Query), read back and checked, and
//! deleted (three writes to the subscription store). The clients are threads on blocking sockets
//! (`raw_http::Connection`); the agent shares the machine's two cores with them and with
//! the other two nodes. Exits with status 1 when any answer was wrong. Run it as one
//! foreground command: on the development VM, background processes stall between shell
//! commands.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cim_schema::xml::{decode, Body, Data, Limits, Response};
use cimguard_tests::cluster::TestCluster;
use cimguard_tests::failover::{cmcld_program, load_average, machine};
use cimguard_tests::raw_http::{self, Connection, TlsVersion};
use cimguard_tests::requests::{instance_name_of, iparam, namespace_elements};
use cimguard_tests::soak::rss_kib;

const ADMIN: (&str, &str) = ("admin", "load-bench-secret");

/// The query a filter of the mix is given by ModifyInstance.
const MODIFIED_QUERY: &str = "SELECT * FROM CIM_InstCreation";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

fn classname(name: &str) -> String {
    iparam("ClassName", &format!("<CLASSNAME NAME=\"{name}\"/>"))
}

/// An intrinsic call of `method` in root/cimv2.
fn cimv2(method: &'static str, params: &str) -> Call {
    Call::intrinsic(method, method, "root/cimv2", params)
}

fn value(name: &str, text: &str) -> String {
    iparam(name, &format!("<VALUE>{text}</VALUE>"))
}

/// One request of the mix, ready to send but for its message ID.
struct Call {
    name: &'static str,
    method: String,
    object: String,
    inner: String,
}

impl Call {
    fn intrinsic(name: &'static str, method: &str, ns: &str, params: &str) -> Call {
        Call {
            name,
            method: method.into(),
            object: ns.into(),
            inner: format!(
                "<IMETHODCALL NAME=\"{method}\"><LOCALNAMESPACEPATH>{}</LOCALNAMESPACEPATH>{params}\
                 </IMETHODCALL>",
                namespace_elements(ns)
            ),
        }
    }

    fn bytes(&self, id: u64, authorization: &str) -> Vec<u8> {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\
             <MESSAGE ID=\"{id}\" PROTOCOLVERSION=\"1.0\"><SIMPLEREQ>{}</SIMPLEREQ></MESSAGE></CIM>",
            self.inner
        );
        raw_http::request(
            "POST",
            "/cimom",
            "127.0.0.1",
            &[
                ("Content-Type", "application/xml; charset=\"utf-8\""),
                ("CIMOperation", "MethodCall"),
                ("CIMMethod", &self.method),
                ("CIMObject", &self.object),
                ("Authorization", authorization),
                ("TE", "trailers"),
            ],
            Some(body.as_bytes()),
        )
    }
}

/// What one exchange returned: the IRETURNVALUE's objects (or the method's output), and the
/// parameters a pull needs.
struct Answer {
    returned: Vec<Data>,
    context: Option<String>,
    end: bool,
}

fn exchange(
    connection: &mut Connection,
    call: &Call,
    id: u64,
    auth: &str,
) -> Result<Answer, String> {
    let response = connection
        .request(&call.bytes(id, auth))
        .map_err(|e| format!("{}: {e}", call.name))?;
    if response.status != 200 {
        return Err(format!(
            "{}: HTTP {} {:?}",
            call.name,
            response.status,
            response.header("CIMError")
        ));
    }
    if let Some(code) = response.trailer("CIMStatusCode") {
        if code != "0" {
            return Err(format!("{}: CIMStatusCode trailer {code}", call.name));
        }
    }
    let message =
        decode(&response.body, &Limits::DEFAULT).map_err(|e| format!("{}: {e}", call.name))?;
    if message.id != id.to_string() {
        return Err(format!(
            "{}: answer to message {} for {id}",
            call.name, message.id
        ));
    }
    match message.body {
        Body::Response(Response::IMethod(answer)) => {
            let result = answer
                .result
                .map_err(|e| format!("{}: CIM error {} {:?}", call.name, e.code, e.description))?;
            let mut context = None;
            let mut end = false;
            for param in &result.params {
                match (param.name.as_str(), &param.value) {
                    ("EnumerationContext", Data::Value(cim_schema::model::Value::String(c))) => {
                        context = Some(c.clone());
                    }
                    ("EnumerationContext", Data::Untyped(cim_schema::xml::Untyped::Scalar(c))) => {
                        context = Some(c.clone());
                    }
                    ("EndOfSequence", Data::Value(cim_schema::model::Value::Boolean(b))) => {
                        end = *b;
                    }
                    ("EndOfSequence", Data::Untyped(cim_schema::xml::Untyped::Scalar(b))) => {
                        end = b.eq_ignore_ascii_case("true");
                    }
                    _ => {}
                }
            }
            Ok(Answer {
                returned: result.return_value.unwrap_or_default(),
                context,
                end,
            })
        }
        Body::Response(Response::Method(answer)) => {
            answer
                .result
                .map_err(|e| format!("{}: CIM error {} {:?}", call.name, e.code, e.description))?;
            Ok(Answer {
                returned: Vec::new(),
                context: None,
                end: true,
            })
        }
        other => Err(format!("{}: not a method response: {other:?}", call.name)),
    }
}

/// The instance name (as XML) of the first object returned.
fn first_name(answer: &Answer) -> Result<String, String> {
    match answer.returned.first() {
        Some(Data::InstanceName(path)) => instance_name_of(path),
        other => Err(format!("no instance name: {other:?}")),
    }
}

#[derive(Default)]
struct Totals {
    operations: AtomicU64,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    latencies: Mutex<Vec<u32>>,
}

impl Totals {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap();
        if first.len() < 10 {
            first.push(what);
        }
    }
}

/// What one client thread needs.
struct Client {
    index: usize,
    address: std::net::SocketAddr,
    ca: std::path::PathBuf,
    cluster_name: String,
    writes: bool,
    stop: Arc<AtomicBool>,
    totals: Arc<Totals>,
}

/// One client: its own connection, the mix in turn, until `stop`.
fn client(client: Client) {
    let Client {
        index,
        address,
        ca,
        cluster_name,
        writes,
        stop,
        totals,
    } = client;
    let auth = raw_http::basic(ADMIN.0, ADMIN.1);
    let mut connection = match Connection::tls(address, &ca, "127.0.0.1", TlsVersion::Tls13) {
        Ok(c) => c,
        Err(e) => return totals.error(format!("client {index}: {e}")),
    };
    let object_name = cluster_name.replace("InstanceName", "ObjectName");
    let mix = [
        cimv2("EnumerateInstances", &classname("HP_SGPackage")),
        cimv2("EnumerateInstanceNames", &classname("HP_SGNode")),
        cimv2("GetInstance", &cluster_name),
        cimv2("GetClass", &classname("HP_SGPackage")),
        cimv2("EnumerateClassNames", ""),
        cimv2("Associators", &object_name),
        cimv2("ReferenceNames", &object_name),
        cimv2(
            "ExecQuery",
            &(value("QueryLanguage", "WQL")
                + &value(
                    "Query",
                    "SELECT Name, Status FROM HP_SGPackage WHERE Name LIKE 'db%'",
                )),
        ),
        cimv2("EnumerateQualifiers", ""),
        cimv2("EnumerateClasses", &classname("CIM_ManagedElement")),
        cimv2("AssociatorNames", &object_name),
        cimv2("References", &object_name),
        cimv2("GetQualifier", &value("QualifierName", "Key")),
    ];
    // Each open with the pull that goes on with it, one object at a time to the end.
    let one = value("MaxObjectCount", "1");
    let opens = [
        (
            cimv2(
                "OpenEnumerateInstances",
                &(classname("HP_SGPackage") + &one),
            ),
            "PullInstancesWithPath",
        ),
        (
            cimv2(
                "OpenQueryInstances",
                &(value("FilterQueryLanguage", "DMTF:CQL")
                    + &value("FilterQuery", "SELECT * FROM HP_SGNode")
                    + &value("ReturnQueryResultClass", "FALSE")
                    + &one),
            ),
            "PullInstances",
        ),
        (
            cimv2(
                "OpenEnumerateInstancePaths",
                &(classname("HP_SGNode") + &one),
            ),
            "PullInstancePaths",
        ),
        (
            cimv2(
                "OpenAssociatorInstancePaths",
                &(cluster_name.clone() + &one),
            ),
            "PullInstancePaths",
        ),
        (
            cimv2("OpenReferenceInstances", &(cluster_name.clone() + &one)),
            "PullInstancesWithPath",
        ),
    ];
    // An enumeration given up before its end: opened with nothing returned, then closed.
    let open_to_close = cimv2(
        "OpenAssociatorInstances",
        &(cluster_name + &value("MaxObjectCount", "0")),
    );
    let view = Call {
        name: "GetView",
        method: "GetView".into(),
        object: "root/cimv2:HP_SGClusteringService".into(),
        inner: format!(
            "<METHODCALL NAME=\"GetView\"><LOCALCLASSPATH><LOCALNAMESPACEPATH>{}</LOCALNAMESPACEPATH>\
             <CLASSNAME NAME=\"HP_SGClusteringService\"/></LOCALCLASSPATH></METHODCALL>",
            namespace_elements("root/cimv2")
        ),
    };
    let mut id = 0u64;
    let mut round = 0u64;
    let timed =
        |connection: &mut Connection, call: &Call, id: &mut u64| -> Result<Answer, String> {
            *id += 1;
            let start = Instant::now();
            let answer = exchange(connection, call, *id, &auth);
            totals.operations.fetch_add(1, Ordering::Relaxed);
            let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
            totals.latencies.lock().unwrap().push(micros);
            answer
        };
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let mut outcome: Result<(), String> = Ok(());
        for call in &mix {
            if let Err(e) = timed(&mut connection, call, &mut id) {
                outcome = Err(e);
                break;
            }
        }
        // Pulls to the end.
        if outcome.is_ok() {
            for (call, pull_method) in &opens {
                let mut answer = match timed(&mut connection, call, &mut id) {
                    Ok(a) => a,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                };
                while !answer.end {
                    let Some(context) = answer.context.clone() else {
                        outcome = Err(format!("{}: no context and not at the end", call.name));
                        break;
                    };
                    let pull = cimv2(pull_method, &(value("EnumerationContext", &context) + &one));
                    match timed(&mut connection, &pull, &mut id) {
                        Ok(a) => answer = a,
                        Err(e) => {
                            outcome = Err(e);
                            break;
                        }
                    }
                }
            }
        }
        if outcome.is_ok() {
            outcome = timed(&mut connection, &open_to_close, &mut id).and_then(|answer| {
                if answer.end {
                    return Err("OpenAssociatorInstances: at the end with nothing returned".into());
                }
                let context = answer
                    .context
                    .ok_or("OpenAssociatorInstances: no enumeration context")?;
                let close = cimv2("CloseEnumeration", &value("EnumerationContext", &context));
                timed(&mut connection, &close, &mut id).map(drop)
            });
        }
        if outcome.is_ok() {
            outcome = timed(&mut connection, &view, &mut id).map(drop);
        }
        // A filter of one's own: created, read back, deleted.
        if outcome.is_ok() && writes {
            let filter = format!("load-{index}-{round}");
            let create = Call::intrinsic(
                "CreateInstance",
                "CreateInstance",
                "root/interop",
                &iparam(
                    "NewInstance",
                    &format!(
                        "<INSTANCE CLASSNAME=\"CIM_IndicationFilter\">\
                         <PROPERTY NAME=\"Name\" TYPE=\"string\"><VALUE>{filter}</VALUE></PROPERTY>\
                         <PROPERTY NAME=\"QueryLanguage\" TYPE=\"string\"><VALUE>WQL</VALUE></PROPERTY>\
                         <PROPERTY NAME=\"Query\" TYPE=\"string\"><VALUE>SELECT * FROM CIM_InstModification</VALUE></PROPERTY>\
                         </INSTANCE>"
                    ),
                ),);
            outcome = timed(&mut connection, &create, &mut id).and_then(|answer| {
                let path = first_name(&answer)?;
                let get = Call::intrinsic(
                    "GetInstance",
                    "GetInstance",
                    "root/interop",
                    &iparam("InstanceName", &path),
                );
                timed(&mut connection, &get, &mut id)?;
                let modify = Call::intrinsic(
                    "ModifyInstance",
                    "ModifyInstance",
                    "root/interop",
                    &(iparam(
                        "ModifiedInstance",
                        &format!(
                            "<VALUE.NAMEDINSTANCE>{path}<INSTANCE CLASSNAME=\"CIM_IndicationFilter\">\
                             <PROPERTY NAME=\"Query\" TYPE=\"string\"><VALUE>{MODIFIED_QUERY}</VALUE>\
                             </PROPERTY></INSTANCE></VALUE.NAMEDINSTANCE>"
                        ),
                    ) + &iparam(
                        "PropertyList",
                        "<VALUE.ARRAY><VALUE>Query</VALUE></VALUE.ARRAY>",
                    )),
                );
                timed(&mut connection, &modify, &mut id)?;
                // Read back: the change is there.
                let read = timed(&mut connection, &get, &mut id)?;
                let query = match read.returned.first() {
                    Some(Data::Instance(instance)) => instance.value("Query").cloned(),
                    _ => None,
                };
                if query != Some(cim_schema::model::Value::String(MODIFIED_QUERY.into())) {
                    return Err(format!("GetInstance after ModifyInstance: Query {query:?}"));
                }
                let delete = Call::intrinsic(
                    "DeleteInstance",
                    "DeleteInstance",
                    "root/interop",
                    &iparam("InstanceName", &path),
                );
                timed(&mut connection, &delete, &mut id).map(drop)
            });
        }
        if let Err(e) = outcome {
            totals.error(format!("client {index}, round {round}: {e}"));
            // A fresh connection: the failed one may be in any state.
            match Connection::tls(address, &ca, "127.0.0.1", TlsVersion::Tls13) {
                Ok(c) => connection = c,
                Err(e) => return totals.error(format!("client {index}: reconnect: {e}")),
            }
        }
    }
}

/// The number of threads of process `pid`.
fn thread_count(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

fn main() -> ExitCode {
    let seconds = setting("LOAD_BENCH_SECONDS", 600);
    let clients = setting("LOAD_BENCH_CLIENTS", 64) as usize;
    let sample_every = Duration::from_secs(setting("LOAD_BENCH_SAMPLE_SECONDS", 30));
    // `LOAD_BENCH_WRITES=0` leaves the filters out of the mix (to tell what they cost).
    let writes = std::env::var("LOAD_BENCH_WRITES").map_or(true, |v| v.trim() != "0");
    println!(
        "load soak: {clients} clients for {seconds} s; {}",
        machine()
    );
    let program = match cmcld_program() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cluster = TestCluster::configure(3, Duration::from_secs(3), "");
    cluster.use_program(&program);
    cluster.with_agents(&[(ADMIN.0, "FULL_ADMIN", ADMIN.1)]);
    cluster.add_demo_packages();
    cluster.start_all();
    cluster.wait_for(Duration::from_secs(120), "dbpkg runs", |c| {
        c.owners(1, "dbpkg").is_some_and(|o| !o.is_empty())
    });
    let url = cluster.agent_url(1);
    let address: std::net::SocketAddr = url
        .trim_start_matches("https://")
        .parse()
        .expect("the agent's address");
    let ca = cluster.agent_ca(1);
    let pid = cluster.pid(1);

    // The cluster's instance name, for GetInstance and the associations.
    let auth = raw_http::basic(ADMIN.0, ADMIN.1);
    let mut probe = Connection::tls(address, &ca, "127.0.0.1", TlsVersion::Tls13).expect("connect");
    let names = cimv2("EnumerateInstanceNames", &classname("HP_SGCluster"));
    let cluster_name = exchange(&mut probe, &names, 1, &auth)
        .and_then(|answer| first_name(&answer))
        .expect("the cluster's instance name");
    drop(probe);
    let cluster_name = iparam("InstanceName", &cluster_name);

    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals::default());
    let threads: Vec<_> = (0..clients)
        .map(|index| {
            let (stop, totals, ca, name) = (
                stop.clone(),
                totals.clone(),
                ca.clone(),
                cluster_name.clone(),
            );
            std::thread::spawn(move || {
                client(Client {
                    index,
                    address,
                    ca,
                    cluster_name: name,
                    writes,
                    stop,
                    totals,
                });
            })
        })
        .collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut samples = vec![(0u64, rss_kib(pid).unwrap_or(0), 0u64)];
    let mut last_operations = 0;
    println!(
        "{:>6} {:>10} {:>10} {:>8}",
        "s", "ops/s", "RSS MiB", "errors"
    );
    while Instant::now() < deadline {
        let next = (start + sample_every * samples.len() as u32).min(deadline);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let operations = totals.operations.load(Ordering::Relaxed);
        let rss = rss_kib(pid).unwrap_or(0);
        let elapsed = start.elapsed().as_secs();
        let interval = elapsed
            .saturating_sub(samples.last().map_or(0, |s| s.0))
            .max(1);
        println!(
            "{elapsed:>6} {:>10.0} {:>10.1} {:>8} {:>8}",
            (operations - last_operations) as f64 / interval as f64,
            rss as f64 / 1024.0,
            thread_count(pid).unwrap_or(0),
            totals.errors.load(Ordering::Relaxed)
        );
        last_operations = operations;
        samples.push((elapsed, rss, operations));
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    let total = start.elapsed();
    let operations = totals.operations.load(Ordering::Relaxed);
    let errors = totals.errors.load(Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *totals.latencies.lock().unwrap());
    latencies.sort_unstable();
    let rss: Vec<u64> = samples.iter().skip(1).map(|s| s.1).collect();
    let after_first_minute: Vec<u64> = samples.iter().filter(|s| s.0 >= 60).map(|s| s.1).collect();
    println!(
        "{operations} operations in {:.0} s: {:.0}/s; errors {errors}; latency p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        total.as_secs_f64(),
        operations as f64 / total.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    println!(
        "cmcld n1 (with the agent) RSS: start {:.1} MiB, min {:.1}, max {:.1}, end {:.1}; from the first minute on: min {:.1}, max {:.1}; load average {}",
        samples[0].1 as f64 / 1024.0,
        rss.iter().min().copied().unwrap_or(0) as f64 / 1024.0,
        rss.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
        rss.last().copied().unwrap_or(0) as f64 / 1024.0,
        after_first_minute.iter().min().copied().unwrap_or(0) as f64 / 1024.0,
        after_first_minute.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
        load_average()
    );
    for error in totals.first_errors.lock().unwrap().iter() {
        println!("error: {error}");
    }
    if errors > 0 || operations == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
