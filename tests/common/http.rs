//! The range source over reqwest, as a user writes it from the crate's docs.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::TryStreamExt;
use kithara_stream::EngineSource;
use kithara_stream::sources::{ByteRange, Progress, RangeResponse, RangeSource};

/// A `RangeSource` that fetches `url` with reqwest; counts its requests in `requests`.
pub fn reqwest_source(
    url: String,
    requests: Arc<AtomicUsize>,
) -> impl EngineSource<Control = (), Event = Progress, Error = io::Error> {
    let client = reqwest::Client::new();
    RangeSource::new(move |range: ByteRange| {
        requests.fetch_add(1, Ordering::SeqCst);
        let request = client.get(&url).header("Range", range.header()).send();
        async move {
            let response = request
                .await
                .and_then(|response| response.error_for_status())
                .map_err(io::Error::other)?;
            let header = |name| {
                response
                    .headers()
                    .get(name)?
                    .to_str()
                    .ok()
                    .map(String::from)
            };
            let (status, content_range) = (response.status().as_u16(), header("content-range"));
            let content_length = response.content_length();
            let body = response.bytes_stream().map_err(io::Error::other);
            Ok(RangeResponse::http(
                status,
                content_range.as_deref(),
                content_length,
                body,
            ))
        }
    })
}
