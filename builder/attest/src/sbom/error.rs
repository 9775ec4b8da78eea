use std::io;

/// Why cataloging a layer or reading an SBOM back failed.
///
/// Content that merely is not what a cataloger looks for (a corrupt jar, a stripped or
/// pre-1.18 Go binary, a malformed `package.json`) is skipped, not an error: an SBOM of
/// what could be read beats no SBOM.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// The layer tar stream itself could not be read.
    #[error(
        "reading the layer tar stream; hint: pass the uncompressed layer (the bytes its diffID names), not the compressed blob"
    )]
    Layer(#[source] io::Error),
    /// The body of one entry of the layer could not be read.
    #[error("reading `{path}` from the layer tar stream")]
    Entry {
        /// The entry's path inside the image.
        path: String,
        /// What the reader said.
        #[source]
        source: io::Error,
    },
    /// An SBOM document is not JSON, or not shaped like the format it claims.
    #[error("parsing the SBOM document as {format} JSON")]
    Json {
        /// `SPDX`, `CycloneDX` or `SBOM` when the format is not known yet.
        format: &'static str,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// An SBOM document is JSON but neither SPDX nor CycloneDX.
    #[error(
        "the SBOM document has neither `spdxVersion` nor `bomFormat`; hint: kiln reads SPDX 2.3 and CycloneDX 1.5 JSON"
    )]
    UnknownFormat,
}
