//! TLS by rustls with the ring provider: web PKI roots by default, extra
//! roots for self-hosted servers, HTTP/2 offered by ALPN.

use std::sync::Arc;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use multica_api::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::transport::HttpVersions;

/// The trust anchors of a client, as given to the builder.
#[derive(Clone, Debug)]
pub(crate) struct TlsRoots {
    /// Whether Mozilla's roots (the `webpki-roots` crate) are trusted.
    pub(crate) web_pki: bool,
    /// Extra roots, DER-encoded.
    pub(crate) der: Vec<Vec<u8>>,
    /// Extra roots, as PEM text (any number of certificates each).
    pub(crate) pem: Vec<Vec<u8>>,
}

impl Default for TlsRoots {
    fn default() -> Self {
        Self { web_pki: true, der: Vec::new(), pem: Vec::new() }
    }
}

impl TlsRoots {
    fn store(&self) -> Result<RootCertStore, Error> {
        let invalid = |what: &str, err: &dyn std::fmt::Display| Error::InvalidArgument(format!("{what}: {err}"));
        let mut store = RootCertStore::empty();
        if self.web_pki {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for der in &self.der {
            store.add(CertificateDer::from(der.as_slice())).map_err(|err| invalid("root certificate (DER)", &err))?;
        }
        for pem in &self.pem {
            let mut found = false;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|err| invalid("root certificate (PEM)", &err))?;
                store.add(cert).map_err(|err| invalid("root certificate (PEM)", &err))?;
                found = true;
            }
            if !found {
                return Err(Error::InvalidArgument("root certificate (PEM): no CERTIFICATE block found".into()));
            }
        }
        if store.is_empty() {
            return Err(Error::InvalidArgument("TLS: no root certificate is trusted".into()));
        }
        Ok(store)
    }

    fn client_config(&self) -> Result<ClientConfig, Error> {
        // The provider is passed explicitly: if feature unification brings a
        // second one into rustls, `ClientConfig::builder()` would panic.
        let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|err| Error::InvalidArgument(format!("TLS: {err}")))?
            .with_root_certificates(self.store()?)
            .with_no_client_auth();
        Ok(config)
    }

    /// Wraps the TCP connector so `https://` goes through rustls (and
    /// `http://` stays plain), offering the HTTP versions by ALPN.
    pub(crate) fn wrap<C>(&self, http: C, versions: HttpVersions) -> Result<HttpsConnector<C>, Error> {
        let builder = HttpsConnectorBuilder::new().with_tls_config(self.client_config()?).https_or_http();
        Ok(match versions {
            HttpVersions::Http1Only => builder.enable_http1().wrap_connector(http),
            HttpVersions::Http1AndAlpnH2 => builder.enable_http1().enable_http2().wrap_connector(http),
            HttpVersions::Http2PriorKnowledge => builder.enable_http2().wrap_connector(http),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_roots_are_invalid_arguments() {
        let bad_der = TlsRoots { der: vec![b"not a certificate".to_vec()], ..TlsRoots::default() };
        assert!(matches!(bad_der.client_config(), Err(Error::InvalidArgument(_))));
        let no_pem = TlsRoots { pem: vec![b"hello".to_vec()], ..TlsRoots::default() };
        assert!(matches!(no_pem.client_config(), Err(Error::InvalidArgument(_))));
        let nothing = TlsRoots { web_pki: false, ..TlsRoots::default() };
        assert!(matches!(nothing.client_config(), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn web_pki_roots_are_trusted_by_default() {
        assert!(TlsRoots::default().client_config().is_ok());
    }
}
