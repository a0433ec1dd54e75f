//! An HTTP/1.1 client over one kept-alive connection, written for load rather than features:
//! one request at a time, bodies sized by `Content-Length` (chunked answers are refused), no
//! redirects, no TLS. Enough for the server API of `api-emit`, and cheaper than the server it
//! calls.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{find, tcp_connect};

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest response body accepted.
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// One answer: its status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A kept-alive connection to one server.
pub struct HttpConnection {
    stream: TcpStream,
    host: String,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
}

impl HttpConnection {
    pub async fn connect(target: SocketAddrV4, source: Ipv4Addr) -> io::Result<HttpConnection> {
        Ok(HttpConnection {
            stream: tcp_connect(target, source).await?,
            host: target.to_string(),
            rbuf: Vec::with_capacity(4096),
            wbuf: Vec::with_capacity(512),
        })
    }

    /// Sends a JSON POST with the extra header lines (each ending in `\r\n`) and reads the
    /// answer.
    pub async fn post_json(
        &mut self,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<Response, HttpError> {
        self.wbuf.clear();
        self.wbuf.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Content-Length: {length}\r\n{headers}\r\n",
                host = self.host,
                length = body.len(),
            )
            .as_bytes(),
        );
        self.wbuf.extend_from_slice(body);
        self.stream.write_all(&self.wbuf).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<Response, HttpError> {
        let head_end = loop {
            if let Some(end) = find(&self.rbuf, b"\r\n\r\n") {
                break end;
            }
            if self.rbuf.len() > MAX_HEAD_BYTES {
                return Err(HttpError::Malformed("response head too long"));
            }
            self.fill().await?;
        };
        let (status, length) = parse_head(&self.rbuf[..head_end])?;
        let body_start = head_end + 4;
        while self.rbuf.len() < body_start + length {
            self.fill().await?;
        }
        let body = self.rbuf[body_start..body_start + length].to_vec();
        self.rbuf.drain(..body_start + length);
        Ok(Response { status, body })
    }

    async fn fill(&mut self) -> Result<(), HttpError> {
        self.rbuf.reserve(4096);
        if self.stream.read_buf(&mut self.rbuf).await? == 0 {
            return Err(HttpError::Closed);
        }
        Ok(())
    }
}

/// The status and `Content-Length` of a response head (without its final blank line).
fn parse_head(head: &[u8]) -> Result<(u16, usize), HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::Malformed("head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or(HttpError::Malformed("status line"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Malformed("chunked bodies are not supported"));
        }
    }
    // Without a length, only answers that never have a body are understood.
    let length = match (length, status) {
        (Some(length), _) => length,
        (None, 204 | 304) => 0,
        (None, _) => return Err(HttpError::Malformed("no Content-Length")),
    };
    if length > MAX_BODY_BYTES {
        return Err(HttpError::Malformed("body too large"));
    }
    Ok((status, length))
}

#[cfg(test)]
mod tests {
    use super::parse_head;

    #[test]
    fn reads_status_and_length() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11";
        assert_eq!(parse_head(head).ok(), Some((200, 11)));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked").is_err());
        assert_eq!(parse_head(b"HTTP/1.1 204 No Content").ok(), Some((204, 0)));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nServer: x").is_err());
    }
}
