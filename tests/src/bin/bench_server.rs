//! `bench_server`: cimguard's WBEM server as cmwbemd builds it (shipped schema, interop
//! provider, `Server` over HTTP and HTTPS, anonymous access), plus one benchmark class in
//! `root/cimv2` whose provider yields `--instances` instances of about `--payload-bytes` each,
//! lazily, so that the server's memory during a large enumeration is the server's own:
//!
//! ```text
//! class CIMGUARD_BenchItem { [Key] string Id; string Payload; uint32 Index; };
//! ```
//!
//! Used by `benches/wbem.rs`; not a product binary. Prints `listening http ADDRESS` and
//! `listening https ADDRESS` on stdout once bound, and serves until killed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use cim_schema::model::{CimType, Instance, InstancePath, Name, Property, Value};
use cim_schema::mof::{NoIncludes, SourceFile};
use cim_schema::shipped::{self, CIMV2};
use cimguard_provider::cimom::ObjectManager;
use cimguard_provider::config::ServerConfig;
use cimguard_provider::error::OperationError;
use cimguard_provider::interop::{InteropProvider, InteropSettings};
use cimguard_provider::provider::{InstanceProvider, Instances, RequestContext};
use cimguard_provider::server::{Server, TlsSource};
use cimguard_provider::service::Service;
use clap::Parser;

/// The allocator of the benchmark server, as of cmwbemd (see there): mimalloc, built without
/// transparent huge pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The benchmark class, compiled into `root/cimv2` after the shipped schema.
const BENCH_MOF: &[u8] =
    b"class CIMGUARD_BenchItem { [Key] string Id; string Payload; uint32 Index; };";

/// The benchmark class's name.
const BENCH_CLASS: &str = "CIMGUARD_BenchItem";

/// cimguard's WBEM server with a large benchmark class.
#[derive(Parser)]
#[command(name = "bench_server", about)]
struct Cli {
    /// The plain-HTTP address to listen on.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:0")]
    http: SocketAddr,
    /// The HTTPS address to listen on.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The directory of the TLS material (created on first start).
    #[arg(long, value_name = "DIR")]
    tls_dir: PathBuf,
    /// Instances of CIMGUARD_BenchItem.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    instances: u32,
    /// Characters of each instance's Payload.
    #[arg(long, value_name = "BYTES", default_value_t = 1000)]
    payload_bytes: usize,
}

/// Yields the benchmark instances one at a time: nothing is held between two of them.
struct BenchItems {
    count: u32,
    payload: Arc<str>,
}

impl InstanceProvider for BenchItems {
    fn enumerate(
        &self,
        _context: &RequestContext,
        class: &Name,
    ) -> Result<Instances, OperationError> {
        let class = class.clone();
        let payload = self.payload.clone();
        Ok(Box::new((0..self.count).map(move |index| {
            let (path, instance) = bench_item(&class, index, &payload);
            Ok((path, Arc::new(instance)))
        })))
    }
}

/// Instance `index`: `Id` is `item-NNNNNN`, `Payload` the given text.
fn bench_item(class: &Name, index: u32, payload: &str) -> (InstancePath, Instance) {
    let id = format!("item-{index:06}");
    let path = InstancePath::new(class.clone()).with_key("Id", Value::String(id.clone()));
    let mut instance = Instance::new(class.clone());
    instance.set(Property::new(
        "Id",
        CimType::String,
        Some(Value::String(id)),
    ));
    instance.set(Property::new(
        "Payload",
        CimType::String,
        Some(Value::String(payload.to_owned())),
    ));
    instance.set(Property::new(
        "Index",
        CimType::Uint32,
        Some(Value::Uint32(index)),
    ));
    (path, instance)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    cimguard_provider::server::limit_huge_pages();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(cli))
}

fn object_manager(cli: &Cli) -> anyhow::Result<ObjectManager> {
    let extra = [SourceFile::new("bench.mof", BENCH_MOF)];
    let repository = shipped::repository_with(CIMV2, &extra, &mut NoIncludes)?;
    let mut manager = ObjectManager::new(repository, "localhost");
    let settings = InteropSettings {
        product: "cimguard".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        system_name: "localhost".into(),
        profiles: Vec::new(),
        indication_service: Default::default(),
        indication_counters: Default::default(),
    };
    InteropProvider::install(&mut manager, &settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Printable ASCII that XML carries unescaped, so the payload's bytes are its characters.
    let payload: String = (b'a'..=b'z')
        .cycle()
        .take(cli.payload_bytes)
        .map(char::from)
        .collect();
    let items = BenchItems {
        count: cli.instances,
        payload: Arc::from(payload),
    };
    manager
        .register(CIMV2, BENCH_CLASS, Arc::new(items))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(manager)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = ServerConfig {
        https_addresses: vec![cli.listen],
        http_addresses: vec![cli.http],
        danger_allow_anonymous: true,
        ..ServerConfig::default()
    };
    let names = cimguard_certs::ServerNames {
        dns_names: vec!["localhost".into()],
        ip_addresses: vec![Ipv4Addr::LOCALHOST.into()],
    };
    let paths = cimguard_certs::ensure(&cli.tls_dir, &names)
        .with_context(|| format!("tls material in {}", cli.tls_dir.display()))?;
    let tls = cimguard_certs::ReloadableServerConfig::new(cimguard_certs::TlsSettings {
        paths,
        client_ca: None,
    })
    .context("tls configuration")?;
    let service = Arc::new(Service::new(config, object_manager(&cli)?, None, None));
    let tls: Arc<dyn TlsSource> = Arc::new(tls);
    let server = Server::bind(service, Some(tls)).await?;
    for (address, https) in server.local_addresses() {
        println!(
            "listening {} {}",
            if https { "https" } else { "http" },
            address
        );
    }
    server
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
