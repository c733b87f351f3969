//! The certificate check of the kubelet's HTTPS probe, which is none: Go's `InsecureSkipVerify`
//! accepts any certificate, whoever issued it, for whatever name, expired or not. What TLS
//! itself asks is still checked, as Go checks it then: the handshake is signed with the key of
//! the certificate the server sent. The key is read from the certificate without judging the
//! rest of it (webpki, which rustls uses, refuses an X.509 version 1 certificate, which Go and
//! so Kubernetes take, and which `openssl x509 -req` made until OpenSSL 3).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};

/// Accepts every certificate; checks the handshake's signature with its key.
#[derive(Debug)]
pub struct AnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let key = PublicKey::of(cert)?;
        // TLS 1.2 does not say which curve an ECDSA scheme means: try each algorithm of it.
        let algorithms = self
            .0
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .unwrap_or_default();
        for alg in algorithms {
            if *alg.public_key_alg_id() == *key.algorithm
                && alg
                    .verify_signature(key.bits, message, dss.signature())
                    .is_ok()
            {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(Error::InvalidCertificate(
            rustls::CertificateError::BadSignature,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let key = PublicKey::of(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(key.info),
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A certificate's `subjectPublicKeyInfo`.
#[derive(Debug, PartialEq, Eq)]
struct PublicKey<'a> {
    /// The whole of it, DER.
    info: &'a [u8],
    /// Its AlgorithmIdentifier's contents (the OID and its parameters).
    algorithm: &'a [u8],
    /// The key: its BIT STRING's bytes.
    bits: &'a [u8],
}

impl<'a> PublicKey<'a> {
    /// The key of a DER certificate of any version: the seventh field of its
    /// `tbsCertificate` (after the version, if given, the serial number, the signature's
    /// algorithm, the issuer, the validity and the subject).
    fn of(cert: &'a [u8]) -> Result<PublicKey<'a>, Error> {
        let bad = Error::InvalidCertificate(rustls::CertificateError::BadEncoding);
        Self::read(cert).ok_or(bad)
    }

    fn read(cert: &'a [u8]) -> Option<PublicKey<'a>> {
        let (cert, _) = der(cert, Some(0x30))?;
        let (mut tbs, _) = der(cert, Some(0x30))?;
        if tbs.first() == Some(&0xa0) {
            tbs = der(tbs, None)?.1;
        }
        for _ in 0..5 {
            tbs = der(tbs, None)?.1;
        }
        let (contents, rest) = der(tbs, Some(0x30))?;
        let info = &tbs[..tbs.len() - rest.len()];
        let (algorithm, key) = der(contents, Some(0x30))?;
        let (bits, _) = der(key, Some(0x03))?;
        match bits.split_first()? {
            (0, bits) => Some(PublicKey {
                info,
                algorithm,
                bits,
            }),
            _ => None,
        }
    }
}

/// The first DER element of `input` (of `tag`, if given): its contents and what follows it.
fn der(input: &[u8], tag: Option<u8>) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if tag.is_some_and(|tag| tag != t) {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes.iter().fold(0, |len, &b| (len << 8) | usize::from(b))
    };
    rest.split_at_checked(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &[u8] = include_bytes!("../../../tests/fixtures/tls/cert.der");

    #[test]
    fn the_key_of_a_version_1_certificate_is_read() {
        let key = PublicKey::read(CERT).unwrap();
        // id-ecPublicKey with the curve prime256v1, and an uncompressed point.
        assert_eq!(key.algorithm, &*rustls::pki_types::alg_id::ECDSA_P256);
        assert_eq!((key.bits.len(), key.bits[0]), (65, 0x04));
        assert_eq!(key.info.len(), 2 + (2 + 19) + (2 + 1 + 65));
    }

    #[test]
    fn what_is_not_a_certificate_has_no_key() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x80",
            b"\x30\x85\x01\x01\x01\x01\x01",
            &CERT[..40],
        ] {
            assert_eq!(PublicKey::read(bytes), None, "{bytes:?}");
        }
        let mut cut = CERT.to_vec();
        cut.truncate(CERT.len() - 1);
        assert_eq!(PublicKey::read(&cut), None);
    }
}
