//! The listener: connections taken and served over HTTP/1.1 (hyper), within limits
//! that keep clients holding connections open from taking the server down. A connection that
//! does not send a request's headers in time is closed; no more than [`ConnLimits::max`] are
//! served at once (the rest wait in the kernel's queue, so the process never runs out of file
//! handles); and one address holds at most [`ConnLimits::per_address`] of them (a trusted
//! proxy's address is not limited: it speaks for many).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tower::{Service, ServiceExt};

use crate::AppState;

/// What one server instance's listener allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once. Keep it under the process's open-file limit (`ulimit -n`),
    /// with room for the database's files and connections.
    pub max: usize,
    /// Connections from one address at once. A workplace's members behind one address (its
    /// network's NAT) share it, so it is set well above a crowd's.
    pub per_address: usize,
    /// How long a client may take to send a request's headers: from the connection's start,
    /// and between requests on a kept-alive connection (so an idle connection is closed after
    /// it; a phone kept online before a grab's release reconnects at most once a while).
    pub header_read_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max: 10_000,
            per_address: 2_000,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Connections open per address. Bounded: an address is in it only while it has a connection
/// open, and at most [`ConnLimits::max`] are.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerAddress`], given back when the connection ends.
struct Held {
    map: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<Held> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Held {
            map: self.clone(),
            ip,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.map.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serve `state`'s API on `listener` within its [`ConnLimits`] until `shutdown` completes, then
/// stop taking connections and wait for the open ones to finish their requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (limits, trusted) = (state.conn_limits, state.trusted_proxies.clone());
    let mut make = crate::http::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max));
    let per_address = Arc::new(PerAddress::default());
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            taken = listener.accept() => match taken {
                Ok(taken) => taken,
                Err(e) => {
                    // out of file handles, or a connection reset before it was taken: a moment's
                    // pause rather than a busy loop
                    tracing::warn!(error = %e, "a connection could not be taken");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let ip = addr.ip().to_canonical();
        let held = if trusted.iter().any(|net| net.contains(&ip)) {
            None
        } else {
            match per_address.take(ip, limits.per_address) {
                Some(held) => Some(held),
                None => {
                    tracing::warn!(target: "security", event = "connections_per_address", %ip, limit = limits.per_address, "a connection over the address's limit was closed");
                    continue;
                }
            }
        };
        let service = make.call(addr).await.unwrap_or_else(|e| match e {});
        let service = TowerToHyperService::new(
            service.map_request(|req: Request<Incoming>| req.map(axum::body::Body::new)),
        );
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
            drop(held);
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_limit_and_gets_each_place_back() {
        let map = Arc::new(PerAddress::default());
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        let first = map.take(a, 2).expect("a first");
        let second = map.take(a, 2).expect("a second");
        assert!(map.take(a, 2).is_none(), "a third over the limit");
        assert!(map.take(b, 2).is_some(), "another address is not held back");
        drop(first);
        let again = map.take(a, 2).expect("a place given back");
        drop((second, again));
        assert!(
            map.0.lock().unwrap().is_empty(),
            "no address is kept once its connections end"
        );
    }
}
