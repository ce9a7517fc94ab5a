//! XML text escaping, shared by the VAPIX answers and the RTSP event metadata.

/// `s` with the five XML special characters escaped.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}
