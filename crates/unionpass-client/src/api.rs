//! The union server's HTTP API, as the device calls it.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use unionpass_core::api::{
    ApiError, KeysResponse, LoginRequest, LoginResponse, PushRequest, PushResponse, SyncResponse,
};
use unionpass_core::checkin::ScannerBundle;
use unionpass_core::ErrorCode;

use crate::error::{ClientError, Result};
use crate::secrets::Sensitive;

/// A validated server base URL (`https://host/`, or `http://` to this computer only: the password
/// and the session token must not cross a network in clear).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUrl(Url);

/// Whether `host` (as a URL writes it: `[::1]` for IPv6) is this computer.
fn loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

impl ServerUrl {
    pub fn parse(s: &str) -> Result<ServerUrl> {
        let mut url = Url::parse(s.trim()).map_err(|_| ClientError::InvalidServerUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::InvalidServerUrl);
        }
        let Some(host) = url.host_str() else {
            return Err(ClientError::InvalidServerUrl);
        };
        if url.scheme() == "http" && !loopback(host) {
            return Err(ClientError::InsecureServerUrl);
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        url.set_query(None);
        url.set_fragment(None);
        Ok(ServerUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    fn join(&self, path: &str) -> Url {
        self.0.join(path).expect("relative API paths join")
    }
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: ServerUrl,
}

fn transport(e: reqwest::Error) -> ClientError {
    if e.is_decode() {
        ClientError::BadResponse(e.to_string())
    } else {
        // connect refused, DNS, timeouts, resets: all mean "not reachable now"
        ClientError::Offline(e.without_url().to_string())
    }
}

/// The seconds a `Retry-After` header asks for (the seconds form; an HTTP date is not used by
/// the union server), at most an hour.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

async fn read<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T> {
    let status = resp.status();
    if status.is_success() {
        return resp.json::<T>().await.map_err(transport);
    }
    let retry_after = retry_after(&resp);
    let bytes = resp.bytes().await.map_err(transport)?;
    match serde_json::from_slice::<ApiError>(&bytes) {
        Ok(e) => Err(ClientError::Server {
            status: status.as_u16(),
            code: e.code,
            message: e.message,
            retry_after,
        }),
        Err(_) => Err(ClientError::Server {
            status: status.as_u16(),
            code: match status {
                StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
                StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
                s if s.is_server_error() => ErrorCode::Unavailable,
                _ => ErrorCode::BadResponse,
            },
            message: format!("HTTP {status}"),
            retry_after,
        }),
    }
}

/// Send a request that may be sent twice (a read, or mutations that carry their ids). A kept-alive
/// connection the server closed a moment ago (a restart, an idle timeout) fails the first send
/// although the server is there: such a failure, not a timeout, is tried once more at once on a
/// fresh connection.
async fn send_idempotent(request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
    let again = request.try_clone();
    match request.send().await {
        Err(e) if (e.is_request() || e.is_connect()) && !e.is_timeout() => match again {
            Some(again) => again.send().await.map_err(transport),
            None => Err(transport(e)),
        },
        other => other.map_err(transport),
    }
}

/// The app's one HTTP client: its connection pool (kept-alive connections, TLS sessions) is shared
/// by every request, so a grab at the moment of release does not pay a new handshake. Pages
/// are asked for gzip. Redirects are not followed: the address is checked once (`ServerUrl`:
/// https, or http on this computer), and a redirect must not carry a password, a reset code or
/// a session token anywhere else (reqwest would send a body again on 307 and 308, even to
/// http); an answer that redirects is not one this app understands.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("UnionPass/", env!("CARGO_PKG_VERSION")))
        .gzip(true)
        .build()
        .expect("HTTP client builds")
}

impl Api {
    /// An API of `base` on its own HTTP client (tools and tests; the app shares one, see
    /// [`Api::over`]).
    pub fn new(base: ServerUrl) -> Api {
        Api::over(http_client(), base)
    }

    /// An API of `base` over `http` (a clone shares its connection pool).
    pub fn over(http: reqwest::Client, base: ServerUrl) -> Api {
        Api { http, base }
    }

    pub fn base(&self) -> &ServerUrl {
        &self.base
    }

    /// Sign in. When the server is too busy checking passwords (503 with a short `Retry-After`,
    /// as under a flood of guesses), wait as told and ask again, for up to about 15 s.
    pub async fn login(&self, req: &LoginRequest) -> Result<LoginResponse> {
        self.post_checked("v1/login", req).await
    }

    /// A forgotten password reset with a code from union staff; every session ends. Waits out
    /// a busy server as [`Api::login`] does.
    pub async fn reset_password(
        &self,
        req: &unionpass_core::api::ResetPasswordRequest,
    ) -> Result<unionpass_core::api::EndedSessions> {
        self.post_checked("v1/password/reset", req).await
    }

    /// POST `req` to an endpoint that checks a password or a code, without a session: a 503
    /// with a short `Retry-After` (too many being checked at once) is waited out and asked
    /// again, for up to about 15 s.
    async fn post_checked<T: DeserializeOwned>(
        &self,
        path: &str,
        req: &impl serde::Serialize,
    ) -> Result<T> {
        let mut waited = Duration::ZERO;
        loop {
            let resp = self
                .http
                .post(self.base.join(path))
                .json(req)
                .send()
                .await
                .map_err(transport)?;
            let retry_after = (resp.status() == StatusCode::SERVICE_UNAVAILABLE)
                .then(|| retry_after(&resp))
                .flatten()
                .filter(|d| *d <= Duration::from_secs(5));
            match retry_after {
                Some(d) if waited + d <= Duration::from_secs(15) => {
                    waited += d;
                    tokio::time::sleep(d).await;
                }
                _ => return read(resp).await,
            }
        }
    }

    /// POST `path` with the session token, and a JSON body when there is one.
    async fn post_as(
        &self,
        token: &Sensitive<String>,
        path: &str,
        body: Option<&(impl serde::Serialize + ?Sized)>,
    ) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .post(self.base.join(path))
            .bearer_auth(token.expose());
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.map_err(transport)
    }

    pub async fn logout(&self, token: &Sensitive<String>) -> Result<()> {
        no_content(self.post_as(token, "v1/logout", None::<&()>).await?).await
    }

    pub async fn sync(&self, token: &Sensitive<String>, cursor: i64) -> Result<SyncResponse> {
        let mut url = self.base.join("v1/sync");
        url.query_pairs_mut()
            .append_pair("cursor", &cursor.to_string());
        read(send_idempotent(self.http.get(url).bearer_auth(token.expose())).await?).await
    }

    /// Push queued mutations; each carries its id, so the server applies it once however often
    /// it is sent.
    pub async fn push(&self, token: &Sensitive<String>, req: &PushRequest) -> Result<PushResponse> {
        let request = self
            .http
            .post(self.base.join("v1/sync/push"))
            .bearer_auth(token.expose())
            .json(req);
        read(send_idempotent(request).await?).await
    }

    /// The password again, for one large redemption.
    pub async fn reauth(
        &self,
        token: &Sensitive<String>,
        req: &unionpass_core::api::ReauthRequest,
    ) -> Result<()> {
        no_content(self.post_as(token, "v1/reauth", Some(req)).await?).await
    }

    /// Sign out everywhere: every session of the member ends, this one too.
    pub async fn end_all_sessions(
        &self,
        token: &Sensitive<String>,
    ) -> Result<unionpass_core::api::EndedSessions> {
        read(
            self.post_as(token, "v1/sessions/end-all", None::<&()>)
                .await?,
        )
        .await
    }

    /// A new password; the member's other sessions end.
    pub async fn change_password(
        &self,
        token: &Sensitive<String>,
        req: &unionpass_core::api::ChangePasswordRequest,
    ) -> Result<unionpass_core::api::EndedSessions> {
        read(self.post_as(token, "v1/password", Some(req)).await?).await
    }

    /// The scanner bundle (staff accounts only).
    /// The scanner bundle, leaving out the parts whose validators (`have`) are still current.
    pub async fn scanner(
        &self,
        token: &Sensitive<String>,
        have: &std::collections::BTreeMap<String, String>,
    ) -> Result<ScannerBundle> {
        let mut url = self.base.join("v1/scanner");
        if !have.is_empty() {
            url.query_pairs_mut()
                .append_pair("have", &unionpass_core::checkin::format_have(have));
        }
        read(send_idempotent(self.http.get(url).bearer_auth(token.expose())).await?).await
    }

    /// Every activity with its live counts.
    pub async fn activities(
        &self,
        token: &Sensitive<String>,
    ) -> Result<Vec<unionpass_core::activity::ActivityLive>> {
        let resp = self
            .http
            .get(self.base.join("v1/activities"))
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(transport)?;
        read(resp).await
    }

    pub async fn sign_up(
        &self,
        token: &Sensitive<String>,
        activity_id: i64,
        req: &unionpass_core::activity::SignupRequest,
        timeout: Duration,
    ) -> Result<unionpass_core::activity::SignupAnswer> {
        let resp = self
            .http
            .post(
                self.base
                    .join(&format!("v1/activities/{activity_id}/signup")),
            )
            .bearer_auth(token.expose())
            .timeout(timeout)
            .json(req)
            .send()
            .await
            .map_err(transport)?;
        read(resp).await
    }

    pub async fn poll_results(
        &self,
        token: &Sensitive<String>,
        poll_id: i64,
    ) -> Result<unionpass_core::activity::PollResults> {
        let resp = self
            .http
            .get(self.base.join(&format!("v1/polls/{poll_id}/results")))
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(transport)?;
        read(resp).await
    }

    pub async fn cancel_signup(
        &self,
        token: &Sensitive<String>,
        activity_id: i64,
    ) -> Result<unionpass_core::activity::MySignup> {
        let resp = self
            .http
            .post(
                self.base
                    .join(&format!("v1/activities/{activity_id}/cancel")),
            )
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(transport)?;
        read(resp).await
    }

    pub async fn time(&self) -> Result<unionpass_core::api::TimeResponse> {
        let resp = self
            .http
            .get(self.base.join("v1/time"))
            .send()
            .await
            .map_err(transport)?;
        read(resp).await
    }

    pub async fn grab(
        &self,
        token: &Sensitive<String>,
        campaign_id: i64,
        key: uuid::Uuid,
        timeout: Duration,
    ) -> Result<unionpass_core::campaign::GrabResponse> {
        let resp = self
            .http
            .post(self.base.join(&format!("v1/campaigns/{campaign_id}/grab")))
            .bearer_auth(token.expose())
            .timeout(timeout)
            .json(&unionpass_core::campaign::GrabRequest { key })
            .send()
            .await
            .map_err(transport)?;
        read(resp).await
    }

    /// Which app versions the server serves (open to any app, even one too old for the rest).
    pub async fn version(&self) -> Result<unionpass_core::api::VersionInfo> {
        let resp = send_idempotent(self.http.get(self.base.join("v1/version"))).await?;
        read(resp).await
    }

    pub async fn keys(&self) -> Result<KeysResponse> {
        let resp = self
            .http
            .get(self.base.join("v1/keys"))
            .send()
            .await
            .map_err(transport)?;
        read(resp).await
    }
}

/// An answer with no body: success, or the server's error.
async fn no_content(resp: reqwest::Response) -> Result<()> {
    if resp.status().is_success() {
        Ok(())
    } else {
        read::<serde_json::Value>(resp).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_validated_and_normalised() {
        assert_eq!(
            ServerUrl::parse("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            ServerUrl::parse(" https://union.example/api ")
                .unwrap()
                .as_str(),
            "https://union.example/api/"
        );
        for bad in ["", "127.0.0.1:8080", "ftp://x", "http://", "not a url"] {
            assert!(
                matches!(ServerUrl::parse(bad), Err(ClientError::InvalidServerUrl)),
                "{bad}"
            );
        }
        // in clear only to this computer
        for local in [
            "http://localhost:8080",
            "http://127.0.0.2/",
            "http://[::1]:9000",
        ] {
            assert!(ServerUrl::parse(local).is_ok(), "{local}");
        }
        for remote in [
            "http://union.example",
            "http://192.168.1.20:8080",
            "http://[2001:db8::1]/",
            "http://localhost.example.com",
        ] {
            assert!(
                matches!(
                    ServerUrl::parse(remote),
                    Err(ClientError::InsecureServerUrl)
                ),
                "{remote}"
            );
        }
    }
}
