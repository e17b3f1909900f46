//! The range fetch over reqwest, as a user writes it from the crate's docs.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::TryStreamExt;
use kithara_stream::EngineSource;
use kithara_stream::sources::{ByteRange, Fetch, HttpStatus, Progress, RangeResponse, RangeSource};
use kithara_stream::store::Validator;

/// A fetch of `url` with reqwest; counts its requests in `requests`. The response's `ETag`
/// (else its `Last-Modified`) is its validator.
pub fn reqwest_fetch(url: String, requests: Arc<AtomicUsize>) -> impl Fetch<Error = io::Error> {
    let client = reqwest::Client::new();
    move |range: ByteRange| {
        requests.fetch_add(1, Ordering::SeqCst);
        let request = client.get(&url).header("Range", range.header()).send();
        async move {
            let response = request.await.map_err(io::Error::other)?;
            let header = |name| {
                response
                    .headers()
                    .get(name)?
                    .to_str()
                    .ok()
                    .map(String::from)
            };
            let status = response.status().as_u16();
            // A 404 becomes `NotFound`, a 503 a retryable error (with its `Retry-After`).
            if let Some(error) = HttpStatus::check(status, header("retry-after").as_deref()) {
                return Err(error.into());
            }
            let validator = header("etag")
                .map(Validator::ETag)
                .or_else(|| header("last-modified").map(Validator::LastModified));
            let content_range = header("content-range");
            let content_length = response.content_length();
            let body = response.bytes_stream().map_err(io::Error::other);
            Ok(
                RangeResponse::http(status, content_range.as_deref(), content_length, body)
                    .with_validator(validator),
            )
        }
    }
}

/// A `RangeSource` over [`reqwest_fetch`].
pub fn reqwest_source(
    url: String,
    requests: Arc<AtomicUsize>,
) -> impl EngineSource<Control = (), Event = Progress, Error = io::Error> {
    RangeSource::new(reqwest_fetch(url, requests))
}
