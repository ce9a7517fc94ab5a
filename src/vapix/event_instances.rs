//! `POST /vapix/services` with `aev:GetEventInstances`: the event declarations a VMS reads to
//! learn the device's topics: the I/O ports, virtual inputs, and the Call topics with the DTMF
//! events by name (the spec's "Call state event", "Call state change event", "DTMF event").

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::model::DtmfEvent;
use crate::reply::{text_response, Body};
use crate::xml::xml_escape;

const ENVELOPE_OPEN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SOAP-ENV:Envelope \
    xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
    xmlns:wstop=\"http://docs.oasis-open.org/wsn/t-1\" xmlns:aev=\"http://www.axis.com/vapix/ws/event1\" \
    xmlns:tns1=\"http://www.onvif.org/ver10/topics\" xmlns:tnsaxis=\"http://www.axis.com/2009/event/topics\">\
    <SOAP-ENV:Body>";
const ENVELOPE_CLOSE: &str = "</SOAP-ENV:Body></SOAP-ENV:Envelope>\n";

/// Answers a `/vapix/services` request.
pub fn services(body: &[u8], input_ports: &[usize], dtmf_events: &[DtmfEvent]) -> Response<Body> {
    let text = String::from_utf8_lossy(body);
    if !text.contains("GetEventInstances") {
        let fault = format!(
            "{ENVELOPE_OPEN}<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value></SOAP-ENV:Code>\
             <SOAP-ENV:Reason><SOAP-ENV:Text xml:lang=\"en\">Only aev:GetEventInstances is served</SOAP-ENV:Text>\
             </SOAP-ENV:Reason></SOAP-ENV:Fault>{ENVELOPE_CLOSE}"
        );
        let mut r = text_response(fault);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/soap+xml; charset=utf-8"));
        return r;
    }
    let ports: String = input_ports.iter().map(|p| format!("<aev:Value>{p}</aev:Value>")).collect();
    let dtmf: String = dtmf_events
        .iter()
        .map(|e| format!("<aev:Value aev:NiceName=\"{}\">{}</aev:Value>", xml_escape(&e.name), xml_escape(&e.id)))
        .collect();
    let reasons: String =
        ["Initiated", "NoAnswer", "Busy", "Denied", "Failed", "AcceptedByRemote", "AcceptedByDevice", "Terminated"]
            .iter()
            .map(|r| format!("<aev:Value>{r}</aev:Value>"))
            .collect();
    let xml = format!(
        "{ENVELOPE_OPEN}<aev:GetEventInstancesResponse><wstop:TopicSet>\
<tns1:Device><tnsaxis:IO>\
<Port wstop:topic=\"true\" aev:NiceName=\"Digital input port\"><aev:MessageInstance aev:isProperty=\"true\">\
<aev:SourceInstance><aev:SimpleItemInstance aev:NiceName=\"Port\" Type=\"xsd:int\" Name=\"port\">{ports}</aev:SimpleItemInstance></aev:SourceInstance>\
<aev:DataInstance><aev:SimpleItemInstance aev:NiceName=\"Active\" Type=\"xsd:boolean\" Name=\"state\" isPropertyState=\"true\"/></aev:DataInstance>\
</aev:MessageInstance></Port>\
<VirtualInput wstop:topic=\"true\" aev:NiceName=\"Virtual input\"><aev:MessageInstance aev:isProperty=\"true\">\
<aev:SourceInstance><aev:SimpleItemInstance aev:NiceName=\"Port\" Type=\"xsd:int\" Name=\"port\"/></aev:SourceInstance>\
<aev:DataInstance><aev:SimpleItemInstance aev:NiceName=\"Active\" Type=\"xsd:boolean\" Name=\"active\" isPropertyState=\"true\"/></aev:DataInstance>\
</aev:MessageInstance></VirtualInput>\
</tnsaxis:IO></tns1:Device>\
<tnsaxis:Call>\
<State wstop:topic=\"true\" aev:NiceName=\"State\"><aev:MessageInstance aev:isProperty=\"true\">\
<aev:SourceInstance><aev:SimpleItemInstance Type=\"xsd:string\" Name=\"Source\"><aev:Value>0</aev:Value></aev:SimpleItemInstance></aev:SourceInstance>\
<aev:DataInstance><aev:SimpleItemInstance Type=\"xsd:string\" Name=\"CallState\" isPropertyState=\"true\">\
<aev:Value>Idle</aev:Value><aev:Value>Calling</aev:Value><aev:Value>Active</aev:Value></aev:SimpleItemInstance></aev:DataInstance>\
</aev:MessageInstance></State>\
<StateChange wstop:topic=\"true\" aev:NiceName=\"StateChange\"><aev:MessageInstance>\
<aev:SourceInstance><aev:SimpleItemInstance Type=\"xsd:string\" Name=\"Source\"><aev:Value>0</aev:Value></aev:SimpleItemInstance></aev:SourceInstance>\
<aev:DataInstance><aev:SimpleItemInstance aev:NiceName=\"Reason\" Type=\"xsd:string\" Name=\"Reason\">{reasons}</aev:SimpleItemInstance>\
<aev:SimpleItemInstance aev:NiceName=\"CallId\" Type=\"xsd:string\" Name=\"CallId\"/>\
<aev:SimpleItemInstance aev:NiceName=\"RemoteURI\" Type=\"xsd:string\" Name=\"RemoteURI\"/>\
<aev:SimpleItemInstance aev:NiceName=\"DeviceURI\" Type=\"xsd:string\" Name=\"DeviceURI\"/></aev:DataInstance>\
</aev:MessageInstance></StateChange>\
<DTMF wstop:topic=\"true\" aev:NiceName=\"DTMF\"><aev:MessageInstance>\
<aev:SourceInstance><aev:SimpleItemInstance aev:NiceName=\"DTMFEventId\" Type=\"xsd:string\" Name=\"DTMFEventId\">{dtmf}</aev:SimpleItemInstance></aev:SourceInstance>\
<aev:DataInstance><aev:SimpleItemInstance aev:NiceName=\"CallId\" Type=\"xsd:string\" Name=\"CallId\"/></aev:DataInstance>\
</aev:MessageInstance></DTMF>\
</tnsaxis:Call>\
</wstop:TopicSet></aev:GetEventInstancesResponse>{ENVELOPE_CLOSE}"
    );
    let mut r = text_response(xml);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/soap+xml; charset=utf-8"));
    r
}
