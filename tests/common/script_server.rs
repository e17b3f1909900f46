//! A scripted HTTP/1.1 server on 127.0.0.1 for fault tests: each request is answered by a
//! handler that says what to send (a well-formed range reply, or one that is cut, stalled,
//! truncated or wrong), one request per connection. It counts requests and body bytes sent,
//! and stops with the value that started it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// What the client asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// 0 for the first request, then 1, 2, …
    pub number: usize,
    /// The `Range: bytes=first-[last]` header, if any: `(first, last inclusive)`.
    pub range: Option<(u64, Option<u64>)>,
    /// The `If-Range` header, if any.
    pub if_range: Option<String>,
}

/// What to send back.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status line and headers, without the blank line that ends them.
    pub head: String,
    /// The body as it is sent (before `cut`, `stall` and chunking).
    pub body: Vec<u8>,
    /// Send the body with chunked transfer coding (a clean end at any length).
    pub chunked: bool,
    /// Close the connection after this many body bytes.
    pub cut_after: Option<usize>,
    /// Stop sending after this many body bytes and keep the connection open until the
    /// server stops (or a minute passes).
    pub stall_after: Option<usize>,
    /// Bytes per write; a pause of `pace` between writes.
    pub piece: usize,
    pub pace: Option<Duration>,
}

impl Reply {
    /// The correct answer to `request` for a resource `data`: `200` with the whole body
    /// without a range, `206` with `Content-Range` for a satisfiable one, `416` otherwise.
    pub fn range(data: &[u8], request: &Request) -> Self {
        let total = data.len() as u64;
        match request.range {
            None => Self::status(200, data.to_vec(), &[]),
            Some((first, _)) if first >= total => Self::status(
                416,
                Vec::new(),
                &[("Content-Range", format!("bytes */{total}"))],
            ),
            Some((first, last)) => {
                let last = last.unwrap_or(total - 1).min(total - 1);
                let body = data[first as usize..=last as usize].to_vec();
                Self::status(
                    206,
                    body,
                    &[("Content-Range", format!("bytes {first}-{last}/{total}"))],
                )
            }
        }
    }

    /// A reply with `status`, `body` (its `Content-Length` added unless chunked) and
    /// `headers`.
    pub fn status(status: u16, body: Vec<u8>, headers: &[(&str, String)]) -> Self {
        let mut head = format!("HTTP/1.1 {status} Scripted\r\nConnection: close");
        for (name, value) in headers {
            head.push_str(&format!("\r\n{name}: {value}"));
        }
        Self {
            head,
            body,
            chunked: false,
            cut_after: None,
            stall_after: None,
            piece: 16 * 1024,
            pace: None,
        }
    }

    /// Sends the body chunked, so that it may end early without the client noticing from
    /// the framing.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Self {
        self.cut_after = Some(bytes);
        self
    }

    pub fn stall_after(mut self, bytes: usize) -> Self {
        self.stall_after = Some(bytes);
        self
    }

    pub fn paced(mut self, piece: usize, pace: Duration) -> Self {
        self.piece = piece.max(1);
        self.pace = Some(pace);
        self
    }

    /// Adds a header (an `ETag` or a `Last-Modified`, say) to the head.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.head.push_str(&format!("\r\n{name}: {value}"));
        self
    }

    /// Replaces the body (keeping the head): a part that says one thing and holds another.
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

/// The running server; stops when dropped.
pub struct ScriptServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    body_bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl ScriptServer {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let body_bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (count, sent, stopped) = (requests.clone(), body_bytes.clone(), stop.clone());
        thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((socket, _)) => {
                        let (handler, count, sent, stopped) = (
                            handler.clone(),
                            count.clone(),
                            sent.clone(),
                            stopped.clone(),
                        );
                        thread::spawn(move || serve(socket, &*handler, &count, &sent, &stopped));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self {
            addr,
            requests,
            body_bytes,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Body bytes written so far.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    socket: TcpStream,
    handler: &(dyn Fn(&Request) -> Reply + Send + Sync),
    count: &AtomicUsize,
    sent: &AtomicU64,
    stop: &AtomicBool,
) {
    socket.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(socket.try_clone().unwrap());
    let mut range = None;
    let mut if_range = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = parse_range(value.trim());
            } else if name.eq_ignore_ascii_case("if-range") {
                if_range = Some(value.trim().to_string());
            }
        }
    }
    let number = count.fetch_add(1, Ordering::SeqCst);
    let reply = handler(&Request {
        number,
        range,
        if_range,
    });
    let _ = write_reply(socket, &reply, sent, stop);
}

fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    let last = if last.is_empty() {
        None
    } else {
        Some(last.parse().ok()?)
    };
    Some((first.parse().ok()?, last))
}

fn write_reply(
    mut socket: TcpStream,
    reply: &Reply,
    sent: &AtomicU64,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut head = reply.head.clone();
    if reply.chunked {
        head.push_str("\r\nTransfer-Encoding: chunked");
    } else {
        head.push_str(&format!("\r\nContent-Length: {}", reply.body.len()));
    }
    head.push_str("\r\n\r\n");
    socket.write_all(head.as_bytes())?;
    let limit = reply
        .cut_after
        .into_iter()
        .chain(reply.stall_after)
        .min()
        .unwrap_or(reply.body.len())
        .min(reply.body.len());
    for piece in reply.body[..limit].chunks(reply.piece) {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if reply.chunked {
            socket.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
            socket.write_all(piece)?;
            socket.write_all(b"\r\n")?;
        } else {
            socket.write_all(piece)?;
        }
        sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
        if let Some(pace) = reply.pace {
            thread::sleep(pace);
        }
    }
    if reply.stall_after.is_some_and(|at| at <= limit) {
        let until = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        return Ok(());
    }
    if reply.cut_after.is_some_and(|at| at <= limit) {
        return socket.shutdown(std::net::Shutdown::Both);
    }
    if reply.chunked {
        socket.write_all(b"0\r\n\r\n")?;
    }
    socket.flush()
}
