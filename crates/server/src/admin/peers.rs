//! A minimal HTTP/1.1 client (hyper) for the other members' admin endpoints: one GET with a
//! deadline, and one server-sent-events stream read line by line.
//!
//! Owns: connecting to a member's admin URL, body size limits, SSE `data:` framing.
//! Must never: wait without a deadline for a member that does not answer, or read an
//! unbounded body.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// Largest body [`get`] reads (a member's `/status` is a few KiB).
const BODY_BYTES_MAX: usize = 1 << 20;
/// Longest SSE line accepted from a member.
const LINE_BYTES_MAX: usize = 64 << 10;

async fn request(url: &str, path: &str) -> Result<hyper::Response<Incoming>, String> {
    let hp = crate::server::host_port(url).map_err(|e| e.to_string())?;
    let stream = tokio::net::TcpStream::connect(hp)
        .await
        .map_err(|e| format!("{hp}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{hp}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, hp)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    send.send_request(req)
        .await
        .map_err(|e| format!("{hp}: {e}"))
}

/// `GET url+path` within `timeout`: (status code, body).
pub async fn get(url: &str, path: &str, timeout: Duration) -> Result<(u16, Bytes), String> {
    let fetch = async {
        let resp = request(url, path).await?;
        let code = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), BODY_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((code, body))
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
}

/// Read the SSE stream at `url+path`, calling `on_data` with each event's data until it
/// returns false or the stream ends. Connecting must take less than `connect_timeout`, and
/// the member must send something at least every `idle_timeout`.
pub async fn stream_sse(
    url: &str,
    path: &str,
    connect_timeout: Duration,
    idle_timeout: Duration,
    mut on_data: impl FnMut(String) -> bool,
) -> Result<(), String> {
    let resp = tokio::time::timeout(connect_timeout, request(url, path))
        .await
        .map_err(|_| format!("no answer within {} ms", connect_timeout.as_millis()))??;
    if !resp.status().is_success() {
        return Err(format!("{url}{path}: HTTP {}", resp.status()));
    }
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut data = String::new();
    loop {
        let frame = tokio::time::timeout(idle_timeout, body.frame())
            .await
            .map_err(|_| format!("silent for {} ms", idle_timeout.as_millis()))?;
        let Some(frame) = frame else {
            return Err("stream ended".into());
        };
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&chunk);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() && !on_data(std::mem::take(&mut data)) {
                    return Ok(());
                }
            } else if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
        if buf.len() > LINE_BYTES_MAX {
            return Err(format!("an SSE line over {LINE_BYTES_MAX} bytes"));
        }
    }
}
