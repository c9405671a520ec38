//! A minimal W3C WebDriver client (over chromedriver on loopback), enough for the console's
//! browser test: open a page, find elements by CSS, type, click, read text and attributes,
//! take screenshots. Synchronous (ureq), no extra dependency.

use crate::ConsoleError;
use serde_json::{json, Value};

/// One browser session.
pub struct Session {
    base: String,
    id: String,
    http: ureq::Agent,
}

fn e(what: &str, err: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Connection(format!("webdriver {what}: {err}"))
}

impl Session {
    /// Start a session on a chromedriver at `base` (`http://127.0.0.1:PORT`) with these
    /// Chromium arguments; certificate errors are accepted (the console's own CA).
    pub fn new(base: &str, chrome_args: &[String]) -> Result<Session, ConsoleError> {
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": chrome_args}
        }}});
        let v: Value = http
            .post(&format!("{base}/session"))
            .send_json(caps)
            .map_err(|x| e("new session", x))?
            .body_mut()
            .read_json()
            .map_err(|x| e("new session", x))?;
        let id = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| e("new session", v.to_string()))?
            .to_string();
        Ok(Session {
            base: base.to_string(),
            id,
            http,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ConsoleError> {
        let url = format!("{}/session/{}{path}", self.base, self.id);
        let r = match (method, body) {
            ("POST", Some(b)) => self.http.post(&url).send_json(b),
            ("DELETE", _) => self.http.delete(&url).call(),
            _ => self.http.get(&url).call(),
        };
        let mut r = r.map_err(|x| e(path, x))?;
        let code = r.status().as_u16();
        let text = r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|x| e(path, x))?;
        if !(200..300).contains(&code) {
            return Err(e(path, format!("HTTP {code}: {text}")));
        }
        let v: Value = serde_json::from_str(&text).map_err(|x| e(path, x))?;
        Ok(v["value"].clone())
    }

    /// Navigate.
    pub fn goto(&self, url: &str) -> Result<(), ConsoleError> {
        self.call("POST", "/url", Some(json!({"url": url})))
            .map(|_| ())
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<String, ConsoleError> {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| e("find", css))
    }

    /// Type into an element.
    pub fn type_into(&self, el: &str, text: &str) -> Result<(), ConsoleError> {
        self.call(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .map(|_| ())
    }

    /// Click an element.
    pub fn click(&self, el: &str) -> Result<(), ConsoleError> {
        self.call("POST", &format!("/element/{el}/click"), Some(json!({})))
            .map(|_| ())
    }

    /// An element's attribute.
    pub fn attr(&self, el: &str, name: &str) -> Result<Option<String>, ConsoleError> {
        Ok(self
            .call("GET", &format!("/element/{el}/attribute/{name}"), None)?
            .as_str()
            .map(str::to_string))
    }

    /// An element's visible text.
    pub fn text(&self, el: &str) -> Result<String, ConsoleError> {
        Ok(self
            .call("GET", &format!("/element/{el}/text"), None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The page source.
    pub fn source(&self) -> Result<String, ConsoleError> {
        Ok(self
            .call("GET", "/source", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Set the window size.
    pub fn resize(&self, w: u32, h: u32) -> Result<(), ConsoleError> {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": w, "height": h})),
        )
        .map(|_| ())
    }

    /// A PNG screenshot of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>, ConsoleError> {
        use base64_decode as b64;
        let v = self.call("GET", "/screenshot", None)?;
        b64(v.as_str().unwrap_or_default()).ok_or_else(|| e("screenshot", "bad base64"))
    }

    /// End the session (closes the browser).
    pub fn quit(self) {
        let _ = self
            .http
            .delete(&format!("{}/session/{}", self.base, self.id))
            .call();
    }
}

/// Standard base64 decoding (screenshots), without a dependency for it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_round() {
        assert_eq!(super::base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(super::base64_decode("aGk=").unwrap(), b"hi");
        assert!(super::base64_decode("a$").is_none());
    }
}
