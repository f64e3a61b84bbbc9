//! The console's token: generated on first start into a file only its owner may read (or set in
//! the configuration), required on every request, compared in constant time, never logged.

use std::io::Write as _;
use std::path::Path;

use axum::http::{HeaderMap, Method};
use base64::Engine as _;

use crate::error::ApiError;

/// The console's credentials.
#[derive(Clone)]
pub struct Auth {
    token: String,
    csrf: String,
    session: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

/// How a request showed the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shown {
    /// `Authorization: Bearer`: a program's header, never sent by a browser on its own.
    Bearer,
    /// HTTP Basic: a browser sends it again by itself, to any page of the site, so a
    /// state-changing request must also carry the CSRF token.
    Basic,
    /// The session cookie the login page sets: sent by the browser by itself too.
    Cookie,
}

/// The session cookie's name.
pub(crate) const COOKIE: &str = "mftg_session";

/// The shortest token taken from the configuration.
pub const MIN_TOKEN_LEN: usize = 16;

impl Auth {
    /// Credentials with `token`, which must be at least [`MIN_TOKEN_LEN`] characters of visible
    /// ASCII.
    pub fn with_token(token: &str) -> Result<Auth, String> {
        let token = token.trim();
        if token.len() < MIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "the console token must be at least {MIN_TOKEN_LEN} visible ASCII characters"
            ));
        }
        let mac = |what: &[u8]| {
            as2::hmac_sha256(token.as_bytes(), &[what])
                .map(|m| as2::hex(&m))
                .map_err(|e| e.to_string())
        };
        Ok(Auth {
            token: token.to_string(),
            csrf: mac(b"mftg console csrf")?,
            session: mac(b"mftg console session")?,
        })
    }

    /// The token in `path`; a new random one written there (mode 0600, the folder made) when
    /// the file is not there. The second value says whether it was made now.
    pub fn load_or_create(path: &Path) -> Result<(Auth, bool), String> {
        let shown = path.display();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                return Auth::with_token(&text)
                    .map(|a| (a, false))
                    .map_err(|e| format!("{shown}: {e}"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{shown}: {e}")),
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut bytes = [0u8; 24];
        openssl::rand::rand_bytes(&mut bytes).map_err(|e| e.to_string())?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(path).map_err(|e| format!("{shown}: {e}"))?;
        f.write_all(format!("{token}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{shown}: {e}"))?;
        Auth::with_token(&token).map(|a| (a, true))
    }

    /// The token to send with state-changing requests made with Basic credentials.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether `given` is the token (the login form's field).
    pub(crate) fn is_token(&self, given: &str) -> bool {
        same(given.trim().as_bytes(), self.token.as_bytes())
    }

    /// The `Set-Cookie` value that logs a browser in: a value derived from the token (the
    /// token itself never goes into a cookie), for this site's pages only, out of scripts' reach.
    pub(crate) fn login_cookie(&self) -> String {
        format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200",
            self.session
        )
    }

    /// The `Set-Cookie` value that logs a browser out.
    pub(crate) fn logout_cookie() -> String {
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// How `headers` show the token (the `Authorization` header, else the session cookie);
    /// [`ApiError::unauthorized`] when they do not (nothing says whether a token was there, or
    /// how it was wrong).
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<Shown, ApiError> {
        let Some(value) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            let cookie = headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
                .ok_or_else(ApiError::unauthorized)?;
            return if same(cookie.as_bytes(), self.session.as_bytes()) {
                Ok(Shown::Cookie)
            } else {
                Err(ApiError::unauthorized())
            };
        };
        let (scheme, rest) = value.split_once(' ').ok_or_else(ApiError::unauthorized)?;
        let (shown, given) = if scheme.eq_ignore_ascii_case("bearer") {
            (Shown::Bearer, rest.trim().to_string())
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(ApiError::unauthorized)?;
            let (_user, password) = decoded.split_once(':').ok_or_else(ApiError::unauthorized)?;
            (Shown::Basic, password.to_string())
        } else {
            return Err(ApiError::unauthorized());
        };
        if same(given.as_bytes(), self.token.as_bytes()) {
            Ok(shown)
        } else {
            Err(ApiError::unauthorized())
        }
    }

    /// Whether a request made as `shown` with `method` must show the CSRF token: a change
    /// made with credentials the browser sends by itself (Basic, the cookie).
    pub(crate) fn needs_csrf(shown: Shown, method: &Method) -> bool {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        !safe && shown != Shown::Bearer
    }

    /// Whether `given` (the `X-CSRF-Token` header, or a form's `csrf` field) is the CSRF token.
    pub(crate) fn is_csrf(&self, given: &[u8]) -> bool {
        same(given, self.csrf.as_bytes())
    }
}

/// A change without the CSRF token.
pub(crate) fn csrf_refused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "csrf",
        "a change made with the browser's credentials needs the CSRF token (the X-CSRF-Token \
         header, which GET /api/v1/session gives, or the form's csrf field)",
    )
}

/// Compares in time that does not depend on where the two differ (their HMACs under a fixed
/// key, which have the same length); never equal when the HMAC cannot be made.
fn same(a: &[u8], b: &[u8]) -> bool {
    match (
        as2::hmac_sha256(b"mftg compare", &[a]),
        as2::hmac_sha256(b"mftg compare", &[b]),
    ) {
        (Ok(x), Ok(y)) => openssl::memcmp::eq(&x, &y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", auth.parse().unwrap());
        h
    }

    #[test]
    fn the_token_is_made_once_and_only_its_owner_reads_it() {
        let dir = std::env::temp_dir().join(format!("console-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/console.token");
        let (a, made) = Auth::load_or_create(&path).unwrap();
        assert!(made);
        let (b, made) = Auth::load_or_create(&path).unwrap();
        assert!(!made);
        assert_eq!(a.token, b.token);
        assert!(a.token.len() >= MIN_TOKEN_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{a:?}").contains(&a.token));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bearer_and_basic_pass_and_anything_else_does_not() {
        let a = Auth::with_token("correct-horse-battery-staple").unwrap();
        assert_eq!(
            a.check(&headers("Bearer correct-horse-battery-staple"))
                .unwrap(),
            Shown::Bearer
        );
        let basic =
            base64::engine::general_purpose::STANDARD.encode("admin:correct-horse-battery-staple");
        assert_eq!(
            a.check(&headers(&format!("Basic {basic}"))).unwrap(),
            Shown::Basic
        );
        for wrong in [
            "Bearer correct-horse-battery-stapl",
            "Bearer correct-horse-battery-staple2",
            "Bearer ",
            "Token correct-horse-battery-staple",
            "Basic !!!",
            "correct-horse-battery-staple",
        ] {
            assert_eq!(
                a.check(&headers(wrong)).unwrap_err().code,
                "unauthorized",
                "{wrong}"
            );
        }
        assert!(a.check(&HeaderMap::new()).is_err());
        assert!(Auth::with_token("short").is_err());
    }

    #[test]
    fn a_change_with_browser_credentials_needs_the_csrf_token() {
        let a = Auth::with_token("correct-horse-battery-staple").unwrap();
        assert!(!Auth::needs_csrf(Shown::Basic, &Method::GET));
        assert!(!Auth::needs_csrf(Shown::Bearer, &Method::POST));
        assert!(Auth::needs_csrf(Shown::Basic, &Method::POST));
        assert!(Auth::needs_csrf(Shown::Cookie, &Method::POST));
        assert!(a.is_csrf(a.csrf_token().as_bytes()));
        assert!(!a.is_csrf("0".repeat(64).as_bytes()));
        assert!(!a.is_csrf(b""));
        // The session cookie is neither the token nor the CSRF token, and it logs in.
        let cookie = a.login_cookie();
        assert!(!cookie.contains(&a.token) && !cookie.contains(a.csrf_token()));
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let value = cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert("cookie", format!("theme=dark; {value}").parse().unwrap());
        assert_eq!(a.check(&h).unwrap(), Shown::Cookie);
        h.insert("cookie", format!("{COOKIE}=00").parse().unwrap());
        assert!(a.check(&h).is_err());
    }
}
