//! A tiny HTTP/1.1 responder on loopback, std only: the fake provider and the webhook receiver
//! the crash runs point the server at. One thread accepts, one thread per connection answers
//! (keep-alive honoured); every request is handed to the handler, which returns status and body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{Context, Error};

/// One request as the handler sees it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case, with their values, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Request) -> (u16, String) + Send + Sync;

/// A listening responder; dropping it stops accepting (connections in progress finish).
pub struct FakeHttp {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl FakeHttp {
    pub fn start(handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static) -> Result<Self, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the fake HTTP server")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || {
                    let _ = serve(stream, handler.as_ref());
                });
            }
        });
        Ok(Self { port, stop })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, handler: &Handler) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut length = 0usize;
        let mut close = false;
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                    close = true;
                }
                headers.push((name.trim().to_ascii_lowercase(), value.to_owned()));
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        let (status, answer) = handler(&Request { method, path, headers, body });
        // One write, as an HTTP server's buffered answer goes out: `write!` straight to the
        // socket sends each piece of the format on its own, and with Nagle's algorithm the later
        // pieces wait for the client's delayed ACK (40 ms on Linux), which capped a sender
        // keeping four connections busy at about 90 requests a second.
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        writer.write_all(response.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_each_request_with_the_handlers_reply_on_one_connection() {
        let server = FakeHttp::start(|request| {
            (
                201,
                format!(
                    "{{\"method\":\"{}\",\"path\":\"{}\",\"len\":{},\"id\":\"{}\"}}",
                    request.method,
                    request.path,
                    request.body.len(),
                    request.header("webhook-id").unwrap_or("none")
                ),
            )
        })
        .unwrap();
        let agent = ureq::AgentBuilder::new().build();
        for _ in 0..3 {
            let response = agent
                .post(&format!("{}/hooks/x", server.url()))
                .set("Webhook-Id", "msg_1")
                .send_string("hello")
                .unwrap();
            assert_eq!(response.status(), 201);
            let body: serde_json::Value = response.into_json().unwrap();
            assert_eq!(body, serde_json::json!({"method": "POST", "path": "/hooks/x", "len": 5, "id": "msg_1"}));
        }
    }
}
