use oci_spec::image::ImageIndex;

use super::documents::is_index;
use super::*;
use crate::image::unpack::Compression;
use crate::image::{media, ImageError, Reference};

#[test]
fn ref_file_names_round_trip_and_stay_in_refs() {
    for s in [
        "127.0.0.1:5000/busybox:t",
        "docker.io/library/nginx:1.25",
        "[::1]:5000/a/b:x_y.z-w",
        "localhost/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        let r = Reference::parse(s).unwrap();
        let f = ref_file_name(&r);
        assert!(!f.contains('/') && f != "." && f != "..", "{f}");
        assert_eq!(ref_of_file_name(&f).unwrap(), r, "{s}");
    }
    assert_eq!(
        ref_file_name(&Reference::parse("127.0.0.1:5000/busybox:t").unwrap()),
        "127.0.0.1%3A5000%2Fbusybox%3At"
    );
    assert!(ref_of_file_name("x%2").is_none());
    assert!(ref_of_file_name("nonsense").is_none());
}

#[test]
fn a_missing_store_read_only_has_no_images_and_makes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("none");
    let store = Store::read_only(&dir);
    let r = Reference::parse("127.0.0.1:5000/a:t").unwrap();
    let e = store.resolve(&r).unwrap_err();
    assert!(matches!(e, ImageError::NotFound(_)), "{e}");
    assert!(!dir.exists());
}

#[test]
fn a_store_someone_else_owns_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    Store::open(&dir).unwrap();
    let me = rustix::process::geteuid().as_raw();
    if me != 0 {
        eprintln!("skipping the foreign owner: needs root to chown");
        return;
    }
    std::os::unix::fs::lchown(&dir, Some(1234), None).unwrap();
    let e = Store::open(&dir).err().expect("refused").to_string();
    assert!(e.contains("owned by uid 1234"), "{e}");
}

#[test]
fn layer_media_types_map_to_compressions() {
    assert_eq!(layer_compression(media::OCI_LAYER), Ok(Compression::None));
    assert_eq!(
        layer_compression(media::DOCKER_LAYER_GZIP),
        Ok(Compression::Gzip)
    );
    assert_eq!(
        layer_compression(media::OCI_LAYER_ZSTD),
        Ok(Compression::Zstd)
    );
    let e =
        layer_compression("application/vnd.oci.image.layer.nondistributable.v1.tar").unwrap_err();
    assert!(e.contains("not supported"), "{e}");
}

#[test]
fn indexes_are_told_from_manifests() {
    assert!(is_index("", br#"{"schemaVersion":2,"manifests":[]}"#));
    assert!(!is_index(
        "",
        br#"{"schemaVersion":2,"config":{},"layers":[]}"#
    ));
    assert!(is_index(media::DOCKER_LIST, b""));
}

#[test]
fn an_index_without_this_platform_is_refused_by_name() {
    let idx: ImageIndex = serde_json::from_str(&format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"sha256:{}","size":1,"platform":{{"os":"linux","architecture":"s390x"}}}}]}}"#,
        media::OCI_MANIFEST,
        "0".repeat(64)
    ))
    .unwrap();
    let e = pick_platform(&idx, "index x").unwrap_err().to_string();
    assert!(e.contains("linux/s390x") && e.contains("index x"), "{e}");
}
