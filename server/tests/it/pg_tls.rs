//! TLS to PostgreSQL, against the real server on 127.0.0.1 (which serves TLS with its own
//! certificate, made for `localhost`): the modes of `sslmode` in the URL do what libpq's do.

use unionpass_server::store::postgres::tls;
use unionpass_server::store::{PgStore, StoreError};
use unionpass_server::testing::PgTestDb;

/// The certificate the PostgreSQL server presents (its own, self-signed), as a root to trust.
async fn server_certificate(url: &str) -> String {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let on: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(on, "on", "the test PostgreSQL must serve TLS");
    client
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0)
}

/// Whether a session made with `url`'s TLS settings is encrypted, as the server sees it.
async fn encrypted(url: &str) -> Result<bool, String> {
    let target = tls::target(url).map_err(|e| e.to_string())?;
    let (client, conn) = target
        .config
        .connect(target.tls)
        .await
        .map_err(|e| format!("{e:?}"))?;
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

/// Whether a rustls certificate error is somewhere in `e`'s causes.
fn certificate_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(rustls::Error::InvalidCertificate(_)) = err.downcast_ref::<rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if certificate_refused(inner) {
                    return true;
                }
            }
        }
        cur = err.source();
    }
    false
}

#[tokio::test]
async fn sslmode_in_the_database_url_encrypts_and_checks_as_libpq_does() {
    let db = PgTestDb::create().await;
    let cert = server_certificate(&db.url).await;
    let with = |q: &str| format!("{}?{q}", db.url);
    let on_localhost = |q: &str| format!("{}?{q}", db.url.replace("127.0.0.1", "localhost"));

    assert_eq!(encrypted(&with("sslmode=disable")).await, Ok(false));
    assert_eq!(encrypted(&with("sslmode=require")).await, Ok(true));
    // the default (prefer) encrypts when the server can
    assert_eq!(encrypted(&db.url).await, Ok(true));
    // the certificate is for localhost: verify-ca ignores the name, verify-full does not
    let root = format!("sslrootcert={cert}");
    assert_eq!(
        encrypted(&with(&format!("sslmode=verify-ca&{root}"))).await,
        Ok(true)
    );
    assert_eq!(
        encrypted(&on_localhost(&format!("sslmode=verify-full&{root}"))).await,
        Ok(true)
    );

    // the store itself: a certificate that does not match is refused, with the reason kept
    let err = PgStore::connect(&with(&format!("sslmode=verify-full&{root}")), 2)
        .await
        .err()
        .expect("a certificate for another host must be refused");
    assert!(matches!(err, StoreError::Pool(_)), "{err:?}");
    assert!(certificate_refused(&err), "{err:?}");
    // a root that did not sign the server's certificate: refused too
    let other_root =
        std::env::temp_dir().join(format!("unionpass-other-root-{}.pem", std::process::id()));
    std::fs::write(&other_root, OTHER_ROOT).unwrap();
    let err = PgStore::connect(
        &on_localhost(&format!(
            "sslmode=verify-full&sslrootcert={}",
            other_root.display()
        )),
        2,
    )
    .await
    .err()
    .expect("a certificate no trusted root signed must be refused");
    let _ = std::fs::remove_file(&other_root);
    assert!(certificate_refused(&err), "{err:?}");
    // and one that matches works end to end (migrations included)
    let store = PgStore::connect(&on_localhost(&format!("sslmode=verify-full&{root}")), 2)
        .await
        .unwrap();
    drop(store);
    // a verifying mode without a root is a set-up error, before any connection
    assert!(matches!(
        PgStore::connect(&with("sslmode=verify-full"), 2)
            .await
            .err(),
        Some(StoreError::PgTls(tls::TlsSetupError::NoRootCert(
            "verify-full"
        )))
    ));
}

/// A self-signed certificate made for this test only (`openssl req -x509 -newkey ec
/// -pkeyopt ec_paramgen_curve:P-256 -subj /CN=localhost`); its key was thrown away.
const OTHER_ROOT: &str = include_str!("other-root.pem");
