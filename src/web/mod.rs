//! The web page at `/emulator/`: one self-contained HTML file per face (no build step, no
//! external fetches), served from the binary with the device's identity filled in. The page
//! reads the control API and the event stream, and drives the door through them.

use crate::profile::Profile;
use crate::xml::xml_escape;

/// The device page, for `profile`.
pub fn device_page(profile: &Profile) -> String {
    let name = if profile.prod_full_name.is_empty() { &profile.prod_short_name } else { &profile.prod_full_name };
    fill(
        include_str!("device.html"),
        &[
            ("NAME", name),
            ("BRAND", profile.brand.name()),
            ("MODEL", &profile.prod_nbr),
            ("SERIAL", profile.serial()),
            ("VERSION", &profile.version),
        ],
    )
}

/// One device of a fleet, as the fleet page lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub index: usize,
    pub serial: String,
    pub model: String,
    /// The device's page.
    pub url: String,
}

/// The fleet page: every device with a link to its page.
pub fn fleet_page(devices: &[Listed]) -> String {
    let rows: String = devices
        .iter()
        .map(|d| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{url}\">{url}</a></td></tr>\n",
                d.index,
                xml_escape(&d.model),
                xml_escape(&d.serial),
                url = xml_escape(&d.url)
            )
        })
        .collect();
    include_str!("fleet.html").replace("{{COUNT}}", &devices.len().to_string()).replace("{{ROWS}}", &rows)
}

/// `template` with each `{{KEY}}` replaced by its value, HTML-escaped.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |page, (key, value)| page.replace(&format!("{{{{{key}}}}}"), &xml_escape(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_escaped_into_the_page() {
        let mut profile = Profile::load(crate::profile::DEFAULT_PROFILE).expect("built-in profile");
        profile.prod_full_name = "Door <b>&".into();
        let page = device_page(&profile);
        assert!(page.contains("<h1>Door &lt;b&gt;&amp;</h1>"), "{page}");
        assert!(!page.contains("{{"), "every placeholder is filled");
    }
}
