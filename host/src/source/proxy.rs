//! An HTTP CONNECT tunnel through a proxy, with basic auth from the proxy URL.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::config::ProxyConfig;

/// A proxy's answer to CONNECT is a short header block; anything longer is not a proxy.
const MAX_RESPONSE_BYTES: usize = 8 << 10;

/// Asks the proxy for a tunnel to `host:port`; returns the tunnelled stream.
pub async fn tunnel(mut stream: TcpStream, proxy: &ProxyConfig, host: &str, port: u16) -> Result<TcpStream, String> {
    let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(authorization) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|err| format!("cannot write to the proxy: {err}"))?;
    let response = read_header_block(&mut stream).await?;
    let status_line = response.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("the proxy refused CONNECT {target}: {}", status_line.trim()));
    }
    Ok(stream)
}

/// Reads up to the blank line ending the proxy's response, byte by byte so nothing of the
/// tunnelled stream is consumed.
async fn read_header_block(stream: &mut TcpStream) -> Result<String, String> {
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        if response.len() >= MAX_RESPONSE_BYTES {
            return Err(format!("the proxy's answer is over {MAX_RESPONSE_BYTES} bytes without ending"));
        }
        let byte = stream.read_u8().await.map_err(|err| format!("the proxy closed the connection: {err}"))?;
        response.push(byte);
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}
