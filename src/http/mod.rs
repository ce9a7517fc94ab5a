//! The HTTP server: routing, authentication and body limits in front of the HTTP faces
//! (`vapix`, `control`).

pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};

use crate::auth::{Authenticator, Refusal};
use crate::calls::CallEngine;
use crate::control::Control;
use crate::facades;
use crate::io::IoPorts;
use crate::metrics::DeviceMetrics;
use crate::profile::{Brand, PortDirection, Profile};
use crate::reply::response;
pub use crate::reply::{full, json_response, plain, text_response, Body};
use crate::store::Store;
use crate::vapix::call_service::{command_of, CallService, RequestContext};
use crate::vapix::event_stream::EventStream;
use crate::vapix::fault::Fault;
use crate::vapix::format::Format;
use crate::vapix::media;
use crate::vapix::{device_info, event_instances, io_cgi};

/// Largest request body accepted (except the streamed audio upload).
pub const MAX_BODY: usize = 64 * 1024;

/// Everything the HTTP server routes to.
#[derive(Debug)]
pub struct App {
    /// Checks credentials.
    pub auth: Arc<Authenticator>,
    /// `/vapix/call`.
    pub call_service: CallService,
    /// The calls, for the media endpoints' stream counts.
    pub engine: Arc<CallEngine>,
    /// The event WebSocket.
    pub event_stream: EventStream,
    /// `/emulator/v1/...`.
    pub control: Arc<Control>,
    /// The emulated model.
    pub profile: Arc<Profile>,
    /// I/O ports and virtual inputs.
    pub io: Arc<IoPorts>,
    /// The store (DTMF events for the event declarations).
    pub store: Arc<Store>,
    /// The HTTP user names (for `pwdgrp.cgi`).
    pub user_names: Vec<String>,
    /// The address peer-to-peer SIP URIs show when `--sip-addr` sets one (else the address a
    /// request arrived on).
    pub sip_host: Option<String>,
    /// BAS-IP login sessions (used on BAS-IP devices only).
    pub bas_ip: facades::bas_ip::Sessions,
    /// Where requests, commands and the event bus are counted, and `/metrics` reads.
    pub metrics: DeviceMetrics,
}

/// The paths the device serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    CallService,
    AudioTransmit,
    AudioReceive,
    Video,
    Image,
    WsSession,
    WsDataStream,
    ApiDiscovery,
    BasicDeviceInfo,
    ParamCgi,
    Pwdgrp,
    PortManagement,
    PortCgi,
    VirtualInput(bool),
    Services,
    Control,
    /// 2N's `/api/phone/config`.
    TwoNPhoneConfig,
    /// The `v1.cgi` panel's SIP settings.
    V1CgiSipConfig,
    /// BAS-IP's login (its own credentials, no HTTP auth).
    BasIpLogin,
    /// BAS-IP's SIP settings (a login token, no HTTP auth).
    BasIpSipSettings,
    /// Prometheus metrics.
    Metrics,
    /// The web page.
    WebPage,
}

impl Route {
    /// The route of `path` on a device of `brand`: each brand serves its own API (and the
    /// control API), and answers 404 on the others'.
    fn of(path: &str, brand: Brand) -> Option<Route> {
        if path.starts_with("/emulator/v1/") {
            return Some(Route::Control);
        }
        if path == "/metrics" {
            return Some(Route::Metrics);
        }
        if path == "/emulator/" || path == "/emulator" {
            return Some(Route::WebPage);
        }
        match brand {
            Brand::Axis => Route::axis(path),
            Brand::TwoN => (path == "/api/phone/config").then_some(Route::TwoNPhoneConfig),
            Brand::V1Cgi => (path == "/api/v1.cgi/intercom/sip/config").then_some(Route::V1CgiSipConfig),
            Brand::BasIp => match path {
                "/api/v0/login" => Some(Route::BasIpLogin),
                "/api/v0/sip/settings" => Some(Route::BasIpSipSettings),
                _ => None,
            },
            Brand::Suprema => None,
        }
    }

    fn axis(path: &str) -> Option<Route> {
        Some(match path {
            "/vapix/call" => Route::CallService,
            "/axis-cgi/audio/transmit.cgi" => Route::AudioTransmit,
            "/axis-cgi/audio/receive.cgi" => Route::AudioReceive,
            "/axis-cgi/mjpg/video.cgi" => Route::Video,
            "/axis-cgi/jpg/image.cgi" => Route::Image,
            "/axis-cgi/wssession.cgi" => Route::WsSession,
            "/vapix/ws-data-stream" => Route::WsDataStream,
            "/axis-cgi/apidiscovery.cgi" => Route::ApiDiscovery,
            "/axis-cgi/basicdeviceinfo.cgi" => Route::BasicDeviceInfo,
            "/axis-cgi/param.cgi" => Route::ParamCgi,
            "/axis-cgi/pwdgrp.cgi" => Route::Pwdgrp,
            "/axis-cgi/io/portmanagement.cgi" => Route::PortManagement,
            "/axis-cgi/io/port.cgi" => Route::PortCgi,
            "/axis-cgi/virtualinput/activate.cgi" => Route::VirtualInput(true),
            "/axis-cgi/virtualinput/deactivate.cgi" => Route::VirtualInput(false),
            "/vapix/services" => Route::Services,
            _ => return None,
        })
    }

    /// The path class requests are counted under.
    fn class(self) -> &'static str {
        match self {
            Route::CallService => "call_service",
            Route::AudioTransmit | Route::AudioReceive | Route::Video | Route::Image => "media",
            Route::WsSession | Route::WsDataStream | Route::Services => "events",
            Route::ApiDiscovery | Route::BasicDeviceInfo | Route::ParamCgi | Route::Pwdgrp => "device_info",
            Route::PortManagement | Route::PortCgi | Route::VirtualInput(_) => "io",
            Route::Control => "control",
            Route::TwoNPhoneConfig | Route::V1CgiSipConfig | Route::BasIpLogin | Route::BasIpSipSettings => "vendor",
            Route::Metrics => "metrics",
            Route::WebPage => "web",
        }
    }

    fn method_allowed(self, m: &Method) -> bool {
        match self {
            // checked by the handler
            Route::CallService
            | Route::Control
            | Route::ParamCgi
            | Route::Pwdgrp
            | Route::TwoNPhoneConfig
            | Route::V1CgiSipConfig
            | Route::BasIpSipSettings => true,
            Route::AudioTransmit
            | Route::ApiDiscovery
            | Route::BasicDeviceInfo
            | Route::PortManagement
            | Route::Services => m == Method::POST,
            _ => m == Method::GET,
        }
    }
}

impl server::Handler for App {
    async fn handle(&self, req: Request<Incoming>, local: SocketAddr) -> Response<Body> {
        let route = Route::of(req.uri().path(), self.profile.brand);
        let response = match route {
            Some(route) => self.answer(route, req, local).await,
            None => plain(StatusCode::NOT_FOUND, "404 Not Found"),
        };
        self.metrics.http_request(route.map_or("other", Route::class), response.status().as_u16());
        response
    }

    /// A fault in the request's own format, as every Call service fault: simple when the
    /// target asks for `format=simple`, JSON otherwise.
    fn malformed(target: &str, why: &str) -> Vec<u8> {
        let format = if target.contains("format=simple") { Format::Simple } else { Format::Json };
        let body = format.encode(&Fault::invalid_args(why).to_value());
        server::raw_response("400 Bad Request", format.content_type(), &body)
    }
}

impl App {
    /// Answers one request. `local` is the address the connection arrived on.
    async fn answer(&self, route: Route, req: Request<Incoming>, local: SocketAddr) -> Response<Body> {
        // BAS-IP's API has its own login and bearer tokens instead of HTTP authentication.
        if route == Route::BasIpLogin {
            return self.bas_ip.login(req.uri().query());
        }
        if route == Route::BasIpSipSettings {
            let authorization = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
            if !self.bas_ip.admits(authorization) {
                return facades::bas_ip::log_in();
            }
        }
        // A browser cannot send Digest on a WebSocket upgrade: a session token stands in for it.
        let token = route == Route::WsDataStream && self.event_stream.take_token(req.uri().query());
        if !token && route != Route::BasIpSipSettings {
            let uri = req.uri().path_and_query().map_or(req.uri().path(), |pq| pq.as_str());
            if let Err(refusal) = self.auth.check(req.method().as_str(), uri, req.headers().get(AUTHORIZATION)) {
                return self.unauthorized(refusal);
            }
        }
        if !route.method_allowed(req.method()) {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed");
        }
        let streams = self.engine.streams();
        match route {
            Route::AudioTransmit => media::transmit(req, streams).await,
            Route::AudioReceive => media::receive(streams),
            Route::Video => media::video(streams),
            Route::Image => media::image(req.uri().query()),
            Route::WsSession => self.event_stream.new_session(),
            Route::WsDataStream => self.event_stream.upgrade(req),
            Route::Metrics => {
                self.metrics.observe_bus(self.control.bus());
                text_response(self.metrics.render())
            }
            Route::WebPage => {
                response(StatusCode::OK, "text/html; charset=utf-8", crate::web::device_page(&self.profile))
            }
            Route::PortCgi => io_cgi::port_cgi(&query_pairs(req.uri().query()), &self.io, &self.bus()),
            Route::VirtualInput(active) => io_cgi::virtual_input(&query_pairs(req.uri().query()), active, &self.io),
            _ => self.with_body(route, req, local).await,
        }
    }

    /// The routes that read a whole, bounded body.
    async fn with_body(&self, route: Route, req: Request<Incoming>, local: SocketAddr) -> Response<Body> {
        let (head, body) = req.into_parts();
        let (method, path, query) = (&head.method, head.uri.path(), head.uri.query());
        let content_type = head.headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let format = Format::of_query(query);
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                let fault = Fault::invalid_args(format!("request body rejected: {e} (limit {MAX_BODY} bytes)"));
                return fault_response(format, StatusCode::PAYLOAD_TOO_LARGE, &fault);
            }
        };
        // param.cgi and pwdgrp.cgi take their arguments from the query or a form body.
        let form = || {
            let mut pairs = query_pairs(query);
            pairs.extend(query_pairs(std::str::from_utf8(&body).ok()));
            pairs
        };
        match route {
            Route::CallService => self.vapix_call(method, format, query, &body, local),
            Route::ApiDiscovery => device_info::api_discovery(&body),
            Route::BasicDeviceInfo => device_info::basic_device_info(&body, &self.profile),
            Route::ParamCgi => device_info::param_cgi(&form(), &self.profile, &self.io),
            Route::Pwdgrp => device_info::pwdgrp(&form(), &self.user_names),
            Route::PortManagement => io_cgi::port_management(&body, &self.io),
            Route::TwoNPhoneConfig => facades::two_n::handle(method, query, content_type, body, &self.store).await,
            Route::V1CgiSipConfig => facades::v1cgi::handle(method, &body, &self.store),
            Route::BasIpSipSettings => facades::bas_ip::sip_settings(method, &body, &self.store),
            Route::Services => {
                let inputs: Vec<usize> =
                    self.io.ports().iter().filter(|p| p.direction == PortDirection::Input).map(|p| p.index).collect();
                let dtmf = self.store.read(|s| s.dtmf_events.values().cloned().collect::<Vec<_>>());
                event_instances::services(&body, &inputs, &dtmf)
            }
            _ => match self.control.handle(method, path, query, &body).await {
                Some(Ok(value)) => json_response(StatusCode::OK, &value),
                Some(Err((status, message))) => {
                    let mut r = json_response(status, &serde_json::json!({ "Error": message }));
                    if status == StatusCode::METHOD_NOT_ALLOWED {
                        let allow = crate::control::allowed_methods(path).join(", ");
                        if let Ok(allow) = hyper::header::HeaderValue::from_str(&allow) {
                            r.headers_mut().insert(hyper::header::ALLOW, allow);
                        }
                    }
                    r
                }
                None => plain(StatusCode::NOT_FOUND, "404 Not Found"),
            },
        }
    }

    fn bus(&self) -> Arc<crate::events::EventBus> {
        self.control.bus().clone()
    }

    fn unauthorized(&self, refusal: Refusal) -> Response<Body> {
        let mut r = plain(StatusCode::UNAUTHORIZED, "401 Unauthorized");
        for challenge in self.auth.challenges(refusal == Refusal::Stale) {
            r.headers_mut().append(WWW_AUTHENTICATE, challenge);
        }
        r
    }

    fn vapix_call(
        &self,
        method: &Method,
        format: Format,
        query: Option<&str>,
        body: &[u8],
        local: SocketAddr,
    ) -> Response<Body> {
        let request = match (method, format) {
            (&Method::GET, Format::Simple) | (&Method::POST, _) => format.decode(query, body),
            (&Method::GET, Format::Json) => {
                Err(Fault::invalid_args("use POST with a JSON body, or GET with format=simple&action=axcall:<Command>"))
            }
            _ => return plain(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed"),
        };
        let ctx = RequestContext { sip_host: self.sip_host.as_deref(), local };
        let result = request.and_then(|r| {
            tracing::debug!(action = %r.action, "call service request");
            let answer = self.call_service.handle(&r.action, &r.params, format, &ctx);
            if let Some(command) = command_of(&r.action) {
                self.metrics.command(command, answer.as_ref().err().map(|f| f.code));
            }
            answer
        });
        match result {
            Ok(body) => response(StatusCode::OK, format.content_type(), body),
            Err(fault) => {
                tracing::info!(
                    code = fault.code,
                    msg = fault.msg.as_deref().unwrap_or(fault.reason),
                    "call service fault"
                );
                fault_response(format, StatusCode::BAD_REQUEST, &fault)
            }
        }
    }
}

fn fault_response(format: Format, status: StatusCode, fault: &Fault) -> Response<Body> {
    response(status, format.content_type(), format.encode(&fault.to_value()))
}

/// `key=value` pairs of a query string or form body.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}
