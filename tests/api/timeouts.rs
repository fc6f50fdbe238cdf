//! A silent network partition between the API and PostgreSQL (a proxy that stops passing
//! bytes but keeps every socket open) gives 503s in bounded time, without driver text, and
//! the API recovers when the network does.

use crate::fixture::*;
use crate::helpers::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest the test waits for an answer: a hang fails the test instead of stalling it. The
/// server's own bounds (pool wait, connection set-up, read timeout: 5 s each) are well below.
const CLIENT_PATIENCE: Duration = Duration::from_secs(40);

/// A TCP proxy to PostgreSQL that can be partitioned.
struct Proxy {
    addr: SocketAddr,
    partitioned: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let partitioned = Arc::new(AtomicBool::new(false));
        let flag = partitioned.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    // A partition also swallows new connections: accepted, never answered.
                    while flag.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, flag.clone()));
                    tokio::spawn(pump(sr, cw, flag));
                });
            }
        });
        Self { addr, partitioned }
    }
}

/// Passes bytes on while not partitioned; during a partition, passes nothing and closes
/// nothing (silence), and afterwards delivers what was held, as TCP does once a network
/// heals.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    partitioned: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let still_cut = |flag: &AtomicBool| {
        let cut = flag.load(Ordering::SeqCst);
        async move {
            if cut {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            cut
        }
    };
    loop {
        while still_cut(&partitioned).await {}
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while still_cut(&partitioned).await {}
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn answer(app: &tickflow::app::App, path: &str) -> Answer {
    tokio::time::timeout(CLIENT_PATIENCE, request(app, "GET", path, &[]))
        .await
        .unwrap_or_else(|_| {
            panic!("{path}: no answer within {CLIENT_PATIENCE:?}: the server hangs")
        })
}

#[actix_rt::test]
async fn a_silent_partition_gives_503s_in_bounded_time_and_the_api_recovers() {
    let kafka = broker(1);
    let db = TestDatabase::create().await;
    // The same database, reached through the proxy.
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        other => panic!("this test needs PostgreSQL over TCP, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let mut url = format!(
        "host={} port={} user={} dbname={}",
        proxy.addr.ip(),
        proxy.addr.port(),
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap()
    );
    if let Some(password) = config.get_password() {
        url.push_str(&format!(" password={}", String::from_utf8_lossy(password)));
    }
    let mut s = settings(kafka.bootstrap_servers(), Some(&url), "api-partition");
    s.api_cache_ttl = Duration::ZERO;
    let app = spawn_app(s).await;
    assert_eq!(
        answer(&app, "/api/v2/realtime/prices/AAPL?limit=5")
            .await
            .status,
        200
    );
    assert_eq!(answer(&app, "/health").await.status, 200);

    proxy.partitioned.store(true, Ordering::SeqCst);
    let paths = [
        "/api/v2/realtime/prices/AAPL?limit=5",
        "/api/v2/intraday/prices/AAPL?interval=1m",
        "/api/v2/historical/analytics/AAPL",
        "/api/v2/symbols",
        "/api/v2/realtime/symbols",
    ];
    // More requests at once than the pool has connections: the rest wait for the pool.
    let answers =
        futures_util::future::join_all(paths.iter().cycle().take(12).map(|p| answer(&app, p)))
            .await;
    for (a, path) in answers.iter().zip(paths.iter().cycle()) {
        assert_eq!(a.status, 503, "{path}: {}", a.text);
        assert_eq!(
            a.json,
            serde_json::json!({"detail": "database unavailable"}),
            "{path}"
        );
    }
    let health = answer(&app, "/health").await;
    assert_eq!(health.status, 503);
    let database = &health.json["services"]["database"];
    assert_eq!(database["status"], "unreachable");
    assert!(database["error"].is_string());
    for driver_text in [
        "db error",
        "connection",
        "SQLSTATE",
        "pool",
        "error connecting",
        "Elapsed",
    ] {
        assert!(
            !health.text.contains(driver_text),
            "/health shows {driver_text:?}: {}",
            health.text
        );
    }

    proxy.partitioned.store(false, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let a = answer(&app, "/api/v2/realtime/prices/AAPL?limit=5").await;
        if a.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery: {}",
            a.text
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::timeout(CLIENT_PATIENCE, app.shutdown())
        .await
        .expect("the app shuts down after the partition");
}
