//! `Tracker`: checks what a stream of a `TestSource` yields against the pattern (rule D1).

use futures::StreamExt;
use kithara_stream::{EngineStream, StreamError, StreamMsg};

use super::source::{TestError, pattern};

pub type Msg = StreamMsg<u64, u64>;
pub type Stream = EngineStream<u64, u64, TestError>;

/// Follows the byte offset of a pattern stream and checks every item at it.
#[derive(Debug)]
pub struct Tracker {
    /// The offset of the next byte.
    pub offset: u64,
    pub chunk_size: usize,
    /// Data bytes seen.
    pub bytes: u64,
    /// `(offset, value)` of the controls and events seen.
    pub controls: Vec<(u64, u64)>,
    pub events: Vec<(u64, u64)>,
}

impl Tracker {
    pub fn new(chunk_size: usize) -> Self {
        Self::at(0, chunk_size)
    }

    pub fn at(offset: u64, chunk_size: usize) -> Self {
        Self {
            offset,
            chunk_size,
            bytes: 0,
            controls: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Whether `data` is the pattern at `offset`.
    pub fn matches(offset: u64, data: &[u8]) -> bool {
        data.iter()
            .zip(offset..)
            .all(|(&byte, i)| byte == pattern(i))
    }

    /// Checks one message at the current offset (D1) and moves past it.
    #[track_caller]
    pub fn accept(&mut self, msg: Msg) {
        match msg {
            StreamMsg::Data(data) => {
                assert!(!data.is_empty(), "an empty Data item (B2)");
                assert!(
                    data.len() <= self.chunk_size,
                    "a Data item of {} bytes, longer than chunk_size {}",
                    data.len(),
                    self.chunk_size
                );
                assert!(
                    Self::matches(self.offset, &data),
                    "wrong bytes at offset {}",
                    self.offset
                );
                self.offset += data.len() as u64;
                self.bytes += data.len() as u64;
            }
            StreamMsg::Control(c) => {
                assert_eq!(c, self.offset, "Control({c}) at offset {}", self.offset);
                self.controls.push((self.offset, c));
            }
            StreamMsg::Event(e) => {
                assert_eq!(e, self.offset, "Event({e}) at offset {}", self.offset);
                assert_eq!(
                    self.controls.last().map(|&(at, _)| at),
                    Some(self.offset),
                    "Event({e}) not right after its Control"
                );
                self.events.push((self.offset, e));
            }
        }
    }

    /// Reads the next item, which must be a message, and checks it.
    pub async fn next(&mut self, stream: &mut Stream) -> Msg {
        let msg = stream
            .next()
            .await
            .expect("stream ended early")
            .expect("stream failed early");
        self.accept(msg.clone());
        msg
    }

    /// Reads and checks until at least `offset`.
    pub async fn read_to(&mut self, stream: &mut Stream, offset: u64) {
        while self.offset < offset {
            self.next(stream).await;
        }
    }
}

/// Reads to the end: checks every item, then returns the terminal error, if any, after
/// checking that `None` follows it.
pub async fn drain(stream: &mut Stream, tracker: &mut Tracker) -> Option<StreamError<TestError>> {
    loop {
        match stream.next().await {
            Some(Ok(msg)) => tracker.accept(msg),
            Some(Err(error)) => {
                assert!(
                    stream.next().await.is_none(),
                    "an item after the error {error:?}"
                );
                return Some(error);
            }
            None => return None,
        }
    }
}
