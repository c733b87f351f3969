//! `podc image pull` against a real registry (Debian's docker-registry) on 127.0.0.1, with
//! busybox images made by umoci and pushed by skopeo; a token-issuing proxy in front of it for
//! bearer auth and for a corrupted blob.

mod common;

use std::io::Read;
use std::path::PathBuf;

use common::authproxy::{AuthProxy, TOKEN};
use common::images;
use common::registry::TestRegistry;
use podc::image::registry::{Credentials, Options, Registry};
use podc::image::{media, Digest, Reference, Source};

/// A registry holding `bb:t` (gzip layers) and `bbz:t` (the same image, zstd layers).
struct Fixture {
    reg: TestRegistry,
    dir: tempfile::TempDir,
    layout: PathBuf,
}

fn fixture() -> Option<Fixture> {
    if !(common::registry::tool() && images::tools()) {
        return None;
    }
    let reg = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let layout = images::busybox_layout(dir.path(), "t", &[], &["/bin/sh", "-c", "echo hi"]);
    images::push(&layout, "t", &format!("{}/bb:t", reg.host()));
    let zstd = dir.path().join("zstd");
    images::to_zstd(&layout, "t", &zstd);
    images::push(&zstd, "t", &format!("{}/bbz:t", reg.host()));
    Some(Fixture { reg, dir, layout })
}

fn plain() -> Options {
    Options {
        plain_http: true,
        credentials: None,
    }
}

fn registry(host: &str, name: &str, options: Options) -> Registry {
    Registry::new(
        &Reference::parse(&format!("{host}/{name}")).unwrap(),
        options,
    )
    .unwrap()
}

fn read_blob(src: &mut Registry, digest: &str, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    src.blob(&Digest::parse(digest).unwrap(), size)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Fetches `name:t` through `src` by tag, then by digest, then its config and layers; checks
/// every digest and size. Gives the layer media types.
fn fetch_all(src: &mut Registry) -> Vec<String> {
    let (mt, bytes) = src.manifest("t").unwrap();
    assert_eq!(mt, media::OCI_MANIFEST);
    let digest = Digest::of(&bytes);
    let (mt2, again) = src.manifest(digest.as_str()).unwrap();
    assert_eq!((mt2.as_str(), &again), (mt.as_str(), &bytes));
    let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(&bytes).unwrap();
    let mut descriptors = vec![manifest.config().clone()];
    descriptors.extend(manifest.layers().iter().cloned());
    for d in &descriptors {
        let blob = read_blob(src, d.digest().as_ref(), d.size());
        assert_eq!(blob.len() as u64, d.size());
        assert_eq!(Digest::of(&blob).as_str(), d.digest().as_ref());
    }
    let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&read_blob(
        src,
        manifest.config().digest().as_ref(),
        manifest.config().size(),
    ))
    .unwrap();
    assert_eq!(
        config.config().as_ref().unwrap().cmd().as_deref(),
        Some(&["/bin/sh".to_string(), "-c".into(), "echo hi".into()][..])
    );
    manifest
        .layers()
        .iter()
        .map(|l| l.media_type().to_string())
        .collect()
}

#[test]
fn the_client_fetches_manifests_and_blobs_by_tag_and_digest_gzip_and_zstd() {
    let Some(f) = fixture() else { return };
    let gz = fetch_all(&mut registry(&f.reg.host(), "bb", plain()));
    assert_eq!(gz, [media::OCI_LAYER_GZIP]);
    let zs = fetch_all(&mut registry(&f.reg.host(), "bbz", plain()));
    assert_eq!(zs, [media::OCI_LAYER_ZSTD]);
    // A digest that is not there, a size that is not the blob's.
    let mut src = registry(&f.reg.host(), "bb", plain());
    let e = src.manifest("nope").unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("MANIFEST_UNKNOWN"), "{e}");
    let (_, bytes) = src.manifest("t").unwrap();
    let m: oci_spec::image::ImageManifest = serde_json::from_slice(&bytes).unwrap();
    let layer = &m.layers()[0];
    let digest = Digest::parse(layer.digest().as_ref()).unwrap();
    let e = src
        .blob(&digest, layer.size() - 1)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("the descriptor says"), "{e}");
    let _ = &f.layout;
    let _ = &f.dir;
}

#[test]
fn a_plain_http_registry_is_refused_without_plain_http() {
    let Some(f) = fixture() else { return };
    let mut src = registry(&f.reg.host(), "bb", Options::default());
    let e = src.manifest("t").unwrap_err().to_string();
    assert!(e.contains("needs --plain-http"), "{e}");
}

#[test]
fn bearer_tokens_are_fetched_from_the_realm_and_sent() {
    let Some(f) = fixture() else { return };
    let proxy = AuthProxy::start(f.reg.port(), None, None);
    let mut src = registry(&proxy.host(), "bb", plain());
    fetch_all(&mut src);
    let seen = proxy.seen();
    let tokens: Vec<&str> = seen
        .iter()
        .filter(|s| s.target.starts_with("GET /token"))
        .map(|s| s.target.as_str())
        .collect();
    assert_eq!(tokens.len(), 1, "one token for the whole pull: {seen:#?}");
    assert!(
        tokens[0].contains("service=t") && tokens[0].contains("scope=repository%3Abb%3Apull"),
        "{}",
        tokens[0]
    );
    let authorized = seen
        .iter()
        .filter(|s| s.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")))
        .count();
    assert!(authorized >= 4, "manifest twice, config, layer: {seen:#?}");

    // A token service that wants credentials: refused without, served with them.
    let proxy = AuthProxy::start(f.reg.port(), None, Some("alice:s3cr:et".into()));
    let e = registry(&proxy.host(), "bb", plain())
        .manifest("t")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("token from http://127.0.0.1") && e.contains("401"),
        "{e}"
    );
    let creds = Options {
        plain_http: true,
        credentials: Some(Credentials::parse("alice:s3cr:et").unwrap()),
    };
    fetch_all(&mut registry(&proxy.host(), "bb", creds));
    // The credentials went to the token endpoint only.
    for s in proxy.seen() {
        if let Some(a) = &s.authorization {
            assert!(
                s.target.starts_with("GET /token") == a.starts_with("Basic "),
                "{s:?}"
            );
        }
    }
}
