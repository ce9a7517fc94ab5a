//! Events as ONVIF `tt:MetadataStream` XML, one notification per document, as Axis devices send
//! them on the RTSP event stream.

use std::time::{Duration, UNIX_EPOCH};

use crate::events::Event;
use crate::xml::xml_escape;

/// How a property event is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The current value, sent when a stream starts.
    Initialized,
    /// A new value.
    Changed,
}

fn items(pairs: &indexmap::IndexMap<String, String>) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("<tt:SimpleItem Name=\"{}\" Value=\"{}\"/>", xml_escape(k), xml_escape(v)))
        .collect()
}

/// The metadata document of `event`; `operation` is written for property events only.
pub fn metadata_xml(event: &Event, operation: Operation) -> String {
    let time = humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_millis(event.timestamp));
    let operation = match (event.property, operation) {
        (false, _) => String::new(),
        (true, Operation::Initialized) => " PropertyOperation=\"Initialized\"".to_owned(),
        (true, Operation::Changed) => " PropertyOperation=\"Changed\"".to_owned(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tt:MetadataStream xmlns:tt=\"http://www.onvif.org/ver10/schema\">\n\
<tt:Event><wsnt:NotificationMessage xmlns:tns1=\"http://www.onvif.org/ver10/topics\" \
xmlns:tnsaxis=\"http://www.axis.com/2009/event/topics\" xmlns:wsnt=\"http://docs.oasis-open.org/wsn/b-2\" \
xmlns:wsa5=\"http://www.w3.org/2005/08/addressing\"><wsnt:Topic Dialect=\"http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple\">\
{topic}</wsnt:Topic><wsnt:ProducerReference><wsa5:Address>uri://doorsim/ProducerReference</wsa5:Address>\
</wsnt:ProducerReference><wsnt:Message><tt:Message UtcTime=\"{time}\"{operation}><tt:Source>{source}</tt:Source>\
<tt:Key></tt:Key><tt:Data>{data}</tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tt:Event></tt:MetadataStream>\n",
        topic = xml_escape(event.topic),
        source = items(&event.source),
        data = items(&event.data),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::topics;

    #[test]
    fn port_event_like_the_device() {
        let e = Event::new(topics::IO_PORT, true, &[("port", "0")], &[("state", "1")]);
        let xml = metadata_xml(&e, Operation::Changed);
        assert!(xml.contains(">tns1:Device/tnsaxis:IO/Port</wsnt:Topic>"));
        assert!(xml.contains("PropertyOperation=\"Changed\""));
        assert!(xml.contains("<tt:Source><tt:SimpleItem Name=\"port\" Value=\"0\"/></tt:Source>"));
        assert!(xml.contains("<tt:Data><tt:SimpleItem Name=\"state\" Value=\"1\"/></tt:Data>"));
        let stateless = Event::new(topics::CALL_STATE_CHANGE, false, &[], &[("CallId", "<&>")]);
        let xml = metadata_xml(&stateless, Operation::Initialized);
        assert!(!xml.contains("PropertyOperation") && xml.contains("Value=\"&lt;&amp;&gt;\""));
    }
}
