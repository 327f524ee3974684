//! TLS on the gRPC port: clients verify the server, the server verifies client certificates
//! (mTLS) and knows callers by their certificate's identity, and a rotated certificate is taken
//! in without dropping the connections already open. Certificates are minted per test.

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use common::{Gateway, png};
use ocrgate::{
    auth::CallerConfig,
    client::{OcrClient, TlsFiles},
    transport::TlsConfig,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use tonic::Code;
use vendor_sim::SimConfig;

const NUMBER: &str = "6222020200112345678";
const BILLING: &str = "spiffe://cluster.local/ns/billing/sa/billing";

/// A certificate authority of the test's own.
struct Authority(CertifiedIssuer<'static, KeyPair>);

impl Authority {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        Self(CertifiedIssuer::self_signed(params, key).expect("CA"))
    }

    /// A certificate for `names` (DNS names, or URIs when they contain `://`), and its key, PEM.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        for name in names {
            params.subject_alt_names.push(if name.contains("://") {
                SanType::URI((*name).try_into().expect("URI"))
            } else {
                SanType::DnsName((*name).try_into().expect("DNS name"))
            });
        }
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let certificate = params.signed_by(&key, &self.0).expect("signed");
        (certificate.pem(), key.serialize_pem())
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.0.pem()).expect("written");
        path
    }
}

fn write_pair(dir: &Path, name: &str, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (cert_path, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert).expect("cert");
    std::fs::write(&key_path, key).expect("key");
    (cert_path, key_path)
}

/// A gateway serving TLS with a `localhost` certificate from `server_ca`, requiring client
/// certificates from `client_ca`, whose one caller is known by the identity `BILLING`.
async fn mtls_gateway(dir: &Path, server_ca: &Authority, client_ca: &Authority) -> Gateway {
    let (cert_file, key_file) = write_pair(
        dir,
        "server",
        &server_ca.issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth),
    );
    let client_ca_file = client_ca.write(dir, "client-ca.crt");
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.tls = Some(TlsConfig {
            cert_file,
            key_file,
            client_ca_file: Some(client_ca_file),
            reload_interval: Duration::from_millis(50),
        });
        config.callers = BTreeMap::from([(
            "billing".to_owned(),
            CallerConfig {
                api_key_sha256: None,
                identity: Some(BILLING.into()),
                rpcs: None,
                accounts: None,
                providers: Vec::new(),
                rate_per_second: None,
                daily_budget: None,
            },
        )]);
    })
    .await;
    gateway.sim.add_card_image(png(1), NUMBER);
    gateway
}

fn https(gateway: &Gateway) -> String {
    format!("https://localhost:{}", gateway.address.port())
}

#[tokio::test]
async fn a_client_certificate_names_its_caller_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let (server_ca, client_ca) = (Authority::new("servers"), Authority::new("clients"));
    let gateway = mtls_gateway(dir.path(), &server_ca, &client_ca).await;
    let ca = server_ca.write(dir.path(), "ca.crt");
    let (billing_cert, billing_key) = write_pair(
        dir.path(),
        "billing",
        &client_ca.issue(&[BILLING], ExtendedKeyUsagePurpose::ClientAuth),
    );

    // The CLI, as a process, over mTLS.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ocrgate"))
        .args(["card", "--json", "--addr", &https(&gateway)])
        .arg("--tls-ca")
        .arg(&ca)
        .arg("--cert")
        .arg(&billing_cert)
        .arg("--key")
        .arg(&billing_key)
        .arg(write_image(dir.path()))
        .env_clear()
        .output()
        .await
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(NUMBER));

    // A certificate from the right CA with an identity no caller has.
    let (stranger_cert, stranger_key) = write_pair(
        dir.path(),
        "stranger",
        &client_ca.issue(
            &["spiffe://cluster.local/ns/x/sa/x"],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    );
    let files = TlsFiles {
        ca: Some(&ca),
        cert: Some(&stranger_cert),
        key: Some(&stranger_key),
    };
    let stranger = OcrClient::connect_tls(https(&gateway), &files)
        .await
        .expect("connects");
    let err = stranger
        .recognize_bank_card(png(1))
        .await
        .expect_err("unknown identity");
    assert_eq!(err.code, Code::Unauthenticated);

    // No client certificate: the handshake itself fails.
    let files = TlsFiles {
        ca: Some(&ca),
        ..TlsFiles::default()
    };
    let refused = match OcrClient::connect_tls(https(&gateway), &files).await {
        Err(_) => true,
        Ok(client) => client.recognize_bank_card(png(1)).await.is_err(),
    };
    assert!(refused, "a client without a certificate was served");

    // Plaintext to the TLS port gets nowhere.
    let plain = OcrClient::connect(format!("http://127.0.0.1:{}", gateway.address.port())).await;
    let served = match plain {
        Ok(client) => client.recognize_bank_card(png(1)).await.is_ok(),
        Err(_) => false,
    };
    assert!(!served);
    assert_eq!(gateway.sim.count(vendor_sim::Endpoint::BankCard), 1);
}

fn client_files<'a>(ca: &'a Path, (cert, key): &'a (PathBuf, PathBuf)) -> TlsFiles<'a> {
    TlsFiles {
        ca: Some(ca),
        cert: Some(cert),
        key: Some(key),
    }
}

fn write_image(dir: &Path) -> PathBuf {
    let path = dir.join("card.png");
    std::fs::write(&path, png(1)).expect("image");
    path
}

#[tokio::test]
async fn a_rotated_certificate_is_served_to_new_connections_and_open_ones_stay() {
    let dir = tempfile::tempdir().expect("dir");
    let (old_ca, client_ca) = (Authority::new("servers"), Authority::new("clients"));
    let gateway = mtls_gateway(dir.path(), &old_ca, &client_ca).await;
    let client_pair = write_pair(
        dir.path(),
        "billing",
        &client_ca.issue(&[BILLING], ExtendedKeyUsagePurpose::ClientAuth),
    );
    let old_ca_file = old_ca.write(dir.path(), "old-ca.crt");
    let open = OcrClient::connect_tls(https(&gateway), &client_files(&old_ca_file, &client_pair))
        .await
        .expect("connects with the first certificate");
    assert_eq!(
        open.recognize_bank_card(png(1))
            .await
            .expect("served")
            .card_number,
        NUMBER
    );

    // cert-manager writes a certificate from another CA in place.
    let new_ca = Authority::new("servers, rotated");
    let new_ca_file = new_ca.write(dir.path(), "new-ca.crt");
    write_pair(
        dir.path(),
        "server",
        &new_ca.issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth),
    );
    // New handshakes get it once the files are checked again (every 50 ms here).
    let rotated = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(client) =
                OcrClient::connect_tls(https(&gateway), &client_files(&new_ca_file, &client_pair))
                    .await
                && let Ok(answer) = client.recognize_bank_card(png(1)).await
            {
                return answer;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the rotated certificate is served");
    assert_eq!(rotated.card_number, NUMBER);
    // The connection opened before the rotation still answers.
    assert_eq!(
        open.recognize_bank_card(png(1))
            .await
            .expect("still served")
            .card_number,
        NUMBER
    );
}
